package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/turn"
)

// turnSink is the subscriber of one turn asked for over HTTP (POST
// /v1/chat/completions): the hub pushes that turn's events without
// blocking, the request's handler takes them at its own pace. Chunks that
// arrive while the handler writes are merged, so what waits is at most the
// reply's text; other events are dropped, except the names of the tools
// that start when tool progress was asked for. The hub hands over the
// event that ends the turn with end.
type turnSink struct {
	progress bool // keep tool starts, for tool progress as text

	mu    sync.Mutex
	items []sinkItem
	final []byte // the event that ended the turn; nil while it runs
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
	if !s.progress {
		return
	}
	var ev protocol.ToolStart
	if json.Unmarshal(payload, &ev) != nil || ev.Type != protocol.TypeToolStart {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gone {
		s.items = append(s.items, sinkItem{tool: ev.ToolName})
		s.signal()
	}
}

// end is called by the hub, once, with the event that ended the turn.
func (s *turnSink) end(final []byte) {
	if final == nil { // a turn always ends with an event; never leave take waiting
		final = turn.ErrorEvent(protocol.CodeInternal, "the turn ended without a final event", "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gone {
		s.final = final
		s.signal()
	}
}

// leave tells the sink its handler is gone: what the turn still sends is
// dropped (the turn itself goes on and is stored).
func (s *turnSink) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone, s.items, s.final = true, nil, nil
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
		items, s.items, final = s.items, nil, s.final
		s.mu.Unlock()
		if len(items) > 0 || final != nil {
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
