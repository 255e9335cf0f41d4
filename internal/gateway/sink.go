package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

// turnSink is the subscriber of one turn asked for over HTTP (POST
// /v1/chat/completions): the hub pushes that turn's events without
// blocking, the request's handler takes them at its own pace. Chunks that
// arrive while the handler writes are merged, so what waits is at most the
// reply's text; of the other events only the latest is kept (the event
// that ends the turn is the last one before end) and, when tool progress
// was asked for, the names of the tools that started.
type turnSink struct {
	progress bool // keep tool starts, for tool progress as text

	mu    sync.Mutex
	items []sinkItem
	last  []byte // the latest event other than a chunk
	ended bool   // the turn is over: last is the event that ended it
	gone  bool   // the handler left (its client went away): keep nothing
	wake  chan struct{}
}

// sinkItem is a chunk of the reply's text, or the name of a tool that
// started.
type sinkItem struct {
	text, tool string
}

func newTurnSink(progress bool) *turnSink {
	return &turnSink{progress: progress, wake: make(chan struct{}, 1)}
}

// enqueueChunk implements subscriber.
func (s *turnSink) enqueueChunk(_, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	if n := len(s.items); n > 0 && s.items[n-1].tool == "" {
		s.items[n-1].text += text
	} else {
		s.items = append(s.items, sinkItem{text: text})
	}
	s.signal()
}

// enqueue implements subscriber.
func (s *turnSink) enqueue(payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	s.last = payload
	if s.progress {
		var ev protocol.ToolStart
		if json.Unmarshal(payload, &ev) == nil && ev.Type == protocol.TypeToolStart {
			s.items = append(s.items, sinkItem{tool: ev.ToolName})
			s.signal()
		}
	}
}

// end is called by the hub once the turn's last event was enqueued.
func (s *turnSink) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.signal()
}

// leave tells the sink its handler is gone: what the turn still sends is
// dropped (the turn itself goes on and is stored).
func (s *turnSink) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone, s.items, s.last = true, nil, nil
}

// signal wakes the handler. Caller holds s.mu.
func (s *turnSink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take waits until something arrived, ctx is done or idle fires (nil:
// never). It returns the items that arrived since the previous take and,
// once the turn is over, the event that ended it (final is nil until
// then); both are empty when idle fired first.
func (s *turnSink) take(ctx context.Context, idle <-chan time.Time) (items []sinkItem, final []byte, err error) {
	for {
		s.mu.Lock()
		items, s.items = s.items, nil
		ended := s.ended
		if ended {
			final = s.last
		}
		s.mu.Unlock()
		if len(items) > 0 || ended {
			return items, final, nil
		}
		select {
		case <-s.wake:
		case <-idle:
			return nil, nil, nil
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}
