package tools

import "context"

// Progress is how far a running tool call got: Progress out of Total (0
// when the total is unknown), and an optional message for people.
type Progress struct {
	Progress float64
	Total    float64
	Message  string
}

// progressKey is the context key of a call's progress reporter.
type progressKey struct{}

// WithProgress returns ctx carrying report, which the tool call run with it
// calls (through ReportProgress) to say how far it got. The agent runtime
// sets one per call; report must not block.
func WithProgress(ctx context.Context, report func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// ProgressReporter is the reporter of the call ctx belongs to, or nil when
// nobody listens.
func ProgressReporter(ctx context.Context) func(Progress) {
	report, _ := ctx.Value(progressKey{}).(func(Progress))
	return report
}
