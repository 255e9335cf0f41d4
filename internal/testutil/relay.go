package testutil

import "context"

// ResyncRelay is a gateway's relay (gateway.Relay) with no other gateway
// behind it: each value sent on its channel makes the gateway tell every
// client that events may have been lost, as when a real relay's listener
// reconnects.
type ResyncRelay chan struct{}

// Publish drops the notice: no other gateway listens.
func (ResyncRelay) Publish(string, string, []byte) {}

// Flush has nothing to wait for.
func (ResyncRelay) Flush(context.Context) error { return nil }

// Listen delivers a resync of every session per value received.
func (r ResyncRelay) Listen(ctx context.Context, deliver func(session, kind string, data []byte)) {
	for {
		select {
		case <-r:
			deliver("", "resync", nil)
		case <-ctx.Done():
			return
		}
	}
}
