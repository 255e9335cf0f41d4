package chatclient

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
)

func TestUsageLine(t *testing.T) {
	cached := &core.Usage{InputTokens: 1_200, CacheReadTokens: 38_000, CacheWriteTokens: 2_600, OutputTokens: 350}
	for _, c := range []struct {
		usage *core.Usage
		ctx   *protocol.Context
		want  string
	}{
		{cached, &protocol.Context{Tokens: 41_800, Window: 200_000}, "42k / 200k tokens · 90% cached"},
		{cached, nil, "42k tokens in · 350 out · 90% cached"},
		// No cache use reported (a server without a prompt cache): no share.
		{&core.Usage{InputTokens: 950, OutputTokens: 1_500}, nil, "950 tokens in · 1.5k out"},
		{&core.Usage{InputTokens: 1_234_567, OutputTokens: 9_999}, &protocol.Context{Tokens: 1_234_567, Window: 2_000_000}, "1.2M / 2M tokens"},
		{&core.Usage{InputTokens: 100, CacheWriteTokens: 9_900}, nil, "10k tokens in · 0 out · 0% cached"},
		{nil, &protocol.Context{Tokens: 5_000, Window: 128_000}, "5k / 128k tokens"},
		{&core.Usage{InputTokens: 1_250, OutputTokens: 42_500}, nil, "1.3k tokens in · 43k out"},
		{&core.Usage{InputTokens: 9_950, OutputTokens: 999_500}, nil, "10k tokens in · 1M out"},
		{nil, nil, ""},
	} {
		if got := usageLine(c.usage, c.ctx); got != c.want {
			t.Errorf("usageLine(%+v, %+v) = %q, want %q", c.usage, c.ctx, got, c.want)
		}
	}
}

// usageProvider is the echo provider reporting the usage of a cached call.
type usageProvider struct{ core.Provider }

func (p usageProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	resp, err := p.Provider.Complete(ctx, req, onText)
	resp.Usage = core.Usage{InputTokens: 500, CacheReadTokens: 9_000, CacheWriteTokens: 500, OutputTokens: 20}
	return resp, err
}

// After a reply whose message_done carries usage, the client prints its
// usage line; the transcript keeps the usage on the assistant message.
func TestRunShowsUsage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sessions")
	g := startGatewayWith(t, "127.0.0.1:0", dir, "", usageProvider{scripted.Echo()})
	w, out, done := runAsync(t, Options{URL: g.addr, SessionID: "usage-1"})
	waitOutput(t, out, "(new session)")
	w.Write([]byte("hello\n"))
	waitOutput(t, out, "echo: hello\n(10k tokens in · 20 out · 90% cached)\n")
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	jsonl, err := os.ReadFile(filepath.Join(dir, "usage-1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"content":"echo: hello","timestamp":`; !strings.Contains(string(jsonl), want) ||
		!strings.Contains(string(jsonl), `"usage":{"inputTokens":500,"outputTokens":20,"cacheReadTokens":9000,"cacheWriteTokens":500}}`+"\n") {
		t.Errorf("the transcript's reply lacks its usage:\n%s", jsonl)
	}
}
