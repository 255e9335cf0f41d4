// Package provider holds what the model backends share: the backoff used
// between retries. Each backend lives in its own subpackage.
package provider

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait before retry number attempt (0-based): 0.5 s doubling
// to at most 8 s, less up to a quarter of jitter so clients that failed
// together do not retry together.
func Backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt, 4)
	return d - time.Duration(rand.Int64N(int64(d/4)))
}

// Sleep waits for d or until ctx is done, returning the context's cause then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
