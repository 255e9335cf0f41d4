package chatclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/termsafe"
)

// The live client (tool events as they happen) and `miniclaw sessions show`
// (tool records of a stored transcript) draw tools the same way, so a
// session reads the same after the fact as it did while it ran.
//
// Everything printed that came from the model, a tool, a transcript or the
// gateway goes through termsafe first, so that its control characters are
// shown rather than obeyed by the terminal: the functions here escape the
// fields they print, and the client's output does so for all it writes.

const (
	maxInputShown  = 200 // runes of a tool input on its one line
	maxOutputShown = 100 // runes of a tool output's first line
)

// ToolStartLine is the one line that announces a tool call:
// `⚙ bash {"command":"ls"}`.
func ToolStartLine(name string, input json.RawMessage) string {
	in := compactJSON(input)
	if in == "" || in == "{}" {
		return "⚙ " + termsafe.Line(name)
	}
	return "⚙ " + termsafe.Line(name) + " " + clipRunes(termsafe.Line(in), maxInputShown)
}

// ToolDoneLine is the one line that reports a tool's result: a check mark or
// a cross, then the first line of its output, with "…" when there is more.
func ToolDoneLine(name, output string, isError bool) string {
	return toolDoneHead(name, isError) + " " + firstLine(output)
}

// toolDoneHead is "✓ name:", or "✗ name:" for an error.
func toolDoneHead(name string, isError bool) string {
	mark := "✓"
	if isError {
		mark = "✗"
	}
	return mark + " " + termsafe.Line(name) + ":"
}

// toolStartLines draws a tool call's start, numbered n when n > 0 (the
// number /tool takes): one line, or with full its whole input, indented.
func toolStartLines(n int, name string, input json.RawMessage, full bool) string {
	if !full {
		return toolNumber(n) + ToolStartLine(name, input)
	}
	s := toolNumber(n) + "⚙ " + termsafe.Line(name)
	if in := indentJSON(input); in != "" && in != "{}" {
		s += "\n" + termsafe.Text(in)
	}
	return s
}

// toolDoneLines draws a tool call's result, numbered as its start: its
// first line and how many lines the output has, or with full the whole
// output.
func toolDoneLines(n int, name, output string, isError, full bool) string {
	if !full {
		s := toolNumber(n) + ToolDoneLine(name, output, isError)
		if lines := strings.Count(strings.TrimRight(output, "\n"), "\n") + 1; lines > 1 {
			s += " (" + Count(lines, "line") + ")"
		}
		return s
	}
	head := toolNumber(n) + toolDoneHead(name, isError)
	if strings.TrimSpace(output) == "" {
		return head + " (no output)"
	}
	return head + "\n" + termsafe.Text(strings.TrimRight(output, "\n"))
}

// ToolProgressLine is how far a running call got, the line below its start:
// "… download 3/10 Downloading".
func ToolProgressLine(name string, progress, total float64, message string) string {
	s := "… " + termsafe.Line(name) + " " + strconv.FormatFloat(progress, 'f', -1, 64)
	if total > 0 {
		s += "/" + strconv.FormatFloat(total, 'f', -1, 64)
	}
	if message != "" {
		s += " " + termsafe.Line(message)
	}
	return s
}

func toolNumber(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("[%d] ", n)
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// firstLine is the first non-blank line of s, escaped and clipped, with "…"
// when anything was left out.
func firstLine(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	if s == "" {
		return "(no output)"
	}
	line, rest, more := strings.Cut(s, "\n")
	line = termsafe.Line(strings.TrimRight(line, " \t\r"))
	more = more && strings.TrimSpace(rest) != ""
	if utf8.RuneCountInString(line) > maxOutputShown {
		return clipRunes(line, maxOutputShown)
	}
	if more {
		return line + "…"
	}
	return line
}

// clipRunes cuts s to n runes, the last being "…", when it is longer.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// usageLine is the line shown after a reply: how full the model's context
// window is ("42k / 200k tokens") when the gateway says, else the tokens
// the turn read and wrote, and the share of its input a prompt cache
// served, when the provider reports cache use. Only what is known is shown;
// "" when nothing is. The WebChat draws the same line (web/static/app.js).
func usageLine(u *core.Usage, ctx *protocol.Context) string {
	var parts []string
	switch {
	case ctx != nil && ctx.Window > 0:
		parts = append(parts, tokenCount(ctx.Tokens)+" / "+tokenCount(ctx.Window)+" tokens")
	case u != nil:
		parts = append(parts, tokenCount(u.Prompt())+" tokens in", tokenCount(u.OutputTokens)+" out")
	}
	if u != nil && u.Prompt() > 0 && u.CacheReadTokens+u.CacheWriteTokens > 0 {
		parts = append(parts, fmt.Sprintf("%d%% cached", u.CacheReadTokens*100/u.Prompt()))
	}
	return strings.Join(parts, " · ")
}

// tokenCount is n as people say it: 950, 1.5k, 42k, 1.2M. Integer
// arithmetic rounds halves up, as the WebChat's copy does.
func tokenCount(n int64) string {
	tenths := func(unit int64) string {
		t := (n + unit/20) / (unit / 10)
		if t%10 == 0 {
			return fmt.Sprint(t / 10)
		}
		return fmt.Sprintf("%d.%d", t/10, t%10)
	}
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 9950:
		return tenths(1000) + "k"
	case n < 999_500:
		return fmt.Sprintf("%dk", (n+500)/1000)
	}
	return tenths(1_000_000) + "M"
}

// output writes the client's output and knows whether the cursor is in the
// middle of a line, so that a notice never lands after half a streamed reply.
// Replies and what a command was asked to show go to w; notices go to notes
// when it is set (pipe mode), else to w. So does the reply text of another
// client's turn (aside), so that w carries this client's replies alone.
//
// On a terminal (width set) w is the line editor, which clears the line
// being typed before each write and draws it again after. The line being
// typed stays below the reply: a reply's unfinished last line is followed
// by a newline at once, and the next text first moves the cursor back to
// where that line ended (the column col, counted here). A status line, or
// a tool call's progress line, is rewritten in place by the next one of
// its kind as long as nothing came in between.
type output struct {
	w       io.Writer
	notes   io.Writer
	midLine bool // the last line of text is unfinished
	// aside: the text is another client's reply; it goes where notes go.
	// It changes only between turns, when no line is unfinished.
	aside bool

	width func() int // the terminal's width; nil in line mode
	col   int        // the column after the reply's last line (0 to width)
	// last is the key of the last line written when it may be rewritten
	// in place (see replace), "" otherwise.
	last string
}

// text writes streamed reply text as it comes.
func (o *output) text(s string) {
	if s == "" {
		return
	}
	s = termsafe.Text(s)
	o.last = ""
	if o.width == nil {
		io.WriteString(o.textWriter(), s)
		o.midLine = !strings.HasSuffix(s, "\n")
		return
	}
	width := o.width()
	var b strings.Builder
	if o.midLine && o.col < width {
		// Up to the reply's last line, where it ended. At the full
		// width the text goes on at the start of the next line: here.
		b.WriteString("\x1b[A\r")
		if o.col > 0 {
			fmt.Fprintf(&b, "\x1b[%dC", o.col)
		}
	}
	b.WriteString(s)
	for _, r := range s {
		switch {
		case r == '\n':
			o.col, o.midLine = 0, false
			continue
		case o.col >= width: // the terminal wraps before the next character
			o.col = 0
		}
		if r == '\t' {
			o.col = min((o.col/8+1)*8, width-1)
		} else {
			o.col++
		}
		o.midLine = true
	}
	if o.midLine {
		b.WriteString("\n") // the line being typed goes below
	}
	io.WriteString(o.w, b.String())
}

// endLine moves to the start of a line if the cursor is not there. On a
// terminal it is there already: the reply's next text starts a new line.
func (o *output) endLine() {
	if o.midLine && o.width == nil {
		io.WriteString(o.textWriter(), "\n")
	}
	o.midLine, o.col = false, 0
}

// textWriter is where reply text goes: w, or with aside where notes go.
func (o *output) textWriter() io.Writer {
	if o.aside && o.notes != nil {
		return o.notes
	}
	return o.w
}

// writer is w for a command's output, which starts on a line of its own.
func (o *output) writer() io.Writer {
	o.endLine()
	o.last = ""
	return o.w
}

// erase removes the last n lines from a terminal: the echo of a line typed
// while a reply streams, which would otherwise split the reply.
func (o *output) erase(n int) {
	io.WriteString(o.w, strings.Repeat("\x1b[A\x1b[K", n))
}

// status writes a one-line status on a terminal, in place of the previous
// status line if nothing was written since.
func (o *output) status(s string) {
	o.replace("status", s)
}

// replace writes s as one line on a terminal, in place of the last line
// written if that was written by replace with the same key and nothing
// came since.
func (o *output) replace(key, s string) {
	s = clipRunes(termsafe.Line(s), max(o.width()-1, 20)) // one line: the next one goes up one
	if o.last == key {
		s = "\x1b[A\r\x1b[K" + s
	} else {
		o.endLine()
	}
	io.WriteString(o.w, s+"\n")
	o.last = key
}

// drop erases the last line written if replace wrote it with key and
// nothing came since.
func (o *output) drop(key string) {
	if o.last == key {
		o.erase(1)
		o.last = ""
	}
}

// printf writes one whole notice line (a newline is added), on a line of
// its own. Its arguments may be anything (errors, events): the line is
// escaped.
func (o *output) printf(format string, args ...any) {
	w := o.w
	if o.notes != nil {
		w = o.notes
	}
	o.writeLine(w, format, args...)
}

// line is printf for output the user asked for (/help), which stays on w.
func (o *output) line(format string, args ...any) {
	o.writeLine(o.w, format, args...)
}

func (o *output) writeLine(w io.Writer, format string, args ...any) {
	o.endLine() // a reply cut by a notice still ends its line on o.w
	o.last = ""
	io.WriteString(w, termsafe.Text(fmt.Sprintf(format, args...))+"\n")
}

// WriteSessionTable lists sessions one per line: ID, channel, messages, when
// last updated, title. The current session, if any, is starred.
func WriteSessionTable(w io.Writer, metas []session.Meta, current string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tCHANNEL\tMESSAGES\tUPDATED\tTITLE")
	for _, m := range metas {
		star := " "
		if m.SessionID == current {
			star = "*"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%d\t%s\t%s\n", star, termsafe.Line(m.SessionID), termsafe.Line(m.Channel), m.MessageCount,
			Ago(time.UnixMilli(m.UpdatedAt), now), clipRunes(termsafe.Line(m.Title), 60))
	}
	return tw.Flush()
}

// Ago says when t was, relative to now for the last day, else as a date.
func Ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return t.Local().Format("2006-01-02 15:04")
}

// CompactionLine is what the clients show of a compaction event.
func CompactionLine(covered int, before, after int64) string {
	return fmt.Sprintf("Compacted: %s summarised (%d → %d tokens)", Count(covered, "earlier message"), before, after)
}

// Count is n and noun, plural unless n is 1: "1 message", "3 messages".
// Every count the clients print goes through it.
func Count[N int | int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// summaryBlock writes a summary record as a marked block: it is not a
// message anyone wrote, but what the model sees instead of the lines it
// covers, which the transcript keeps (and which are printed above it).
func summaryBlock(b *strings.Builder, m core.Message, when string) {
	fmt.Fprintf(b, "══ summary · %s: the model sees this instead of the first %s above ══\n", when, Count(m.Covers, "line"))
	b.WriteString(strings.TrimRight(m.Content, "\n") + "\n")
	b.WriteString("══ end of summary ══\n")
}

// ToolView is how WriteTranscript draws tool calls.
type ToolView struct {
	// First is the number of the first tool call drawn, the others follow
	// (the numbers /tool takes in the chat); 0 means 1.
	First int
	// Full draws every tool call's whole input and output instead of a
	// line each.
	Full bool
}

// WriteTranscript prints messages readably: a header per message (role and
// local time), its text, its tool calls as the live client shows them,
// numbered, and the status of a turn that did not finish. Control
// characters are escaped.
func WriteTranscript(w io.Writer, msgs []core.Message, view ToolView) error {
	var b strings.Builder
	n := max(view.First, 1)
	for i, m := range msgs {
		if i > 0 {
			b.WriteString("\n")
		}
		when := time.UnixMilli(m.Timestamp).Local().Format("2006-01-02 15:04:05")
		if m.Role == core.RoleSummary {
			summaryBlock(&b, m, when)
			continue
		}
		fmt.Fprintf(&b, "── %s · %s\n", m.Role, when)
		if c := strings.TrimRight(m.Content, "\n"); c != "" {
			b.WriteString(c + "\n")
		}
		for _, tc := range m.ToolCalls {
			b.WriteString(toolStartLines(n, tc.Name, tc.Input, view.Full) + "\n")
			b.WriteString(toolDoneLines(n, tc.Name, tc.Output, tc.IsError, view.Full) + "\n")
			n++
		}
		if m.Status != "" {
			fmt.Fprintf(&b, "[%s: %s]\n", m.Status, m.Error)
		}
	}
	_, err := io.WriteString(w, termsafe.Text(b.String()))
	return err
}

// WriteMarkdown exports a session as a Markdown document: a title and the
// session's facts, then each message under a heading, with every tool call's
// input and output in fenced blocks. Control characters are escaped: the
// document is for reading, and may be printed on a terminal.
func WriteMarkdown(w io.Writer, meta session.Meta, msgs []core.Message) error {
	var b strings.Builder
	title := meta.Title
	if title == "" {
		title = "Session " + meta.SessionID
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "- Session: `%s`\n- Channel: %s\n- Created: %s\n- Updated: %s\n- Messages: %d\n",
		meta.SessionID, meta.Channel, mdTime(meta.CreatedAt), mdTime(meta.UpdatedAt), meta.MessageCount)
	if meta.ForkedFrom != "" {
		fmt.Fprintf(&b, "- Forked from: `%s`\n", meta.ForkedFrom)
	}
	for _, m := range msgs {
		if m.Role == core.RoleSummary {
			fmt.Fprintf(&b, "\n> **Summary** · %s: the model sees this instead of the first %s (kept above).\n>\n", mdTime(m.Timestamp), Count(m.Covers, "transcript line"))
			for _, line := range strings.Split(strings.TrimRight(m.Content, "\n"), "\n") {
				b.WriteString(strings.TrimRight("> "+line, " ") + "\n")
			}
			continue
		}
		fmt.Fprintf(&b, "\n## %s · %s\n\n", roleTitle(m.Role), mdTime(m.Timestamp))
		if c := strings.TrimRight(m.Content, "\n"); c != "" {
			b.WriteString(c + "\n")
		}
		for _, tc := range m.ToolCalls {
			status := ""
			if tc.IsError {
				status = " (error)"
			}
			fmt.Fprintf(&b, "\n**Tool call: `%s`**%s\n\n", tc.Name, status)
			writeFence(&b, "json", indentJSON(tc.Input))
			b.WriteString("\n")
			writeFence(&b, "text", tc.Output)
		}
		if m.Status != "" {
			fmt.Fprintf(&b, "\n> **%s:** %s\n", m.Status, m.Error)
		}
	}
	_, err := io.WriteString(w, termsafe.Text(b.String()))
	return err
}

func roleTitle(role string) string {
	if role == "" {
		return role
	}
	return strings.ToUpper(role[:1]) + role[1:]
}

func mdTime(ms int64) string {
	if ms == 0 {
		return "unknown"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05 UTC")
}

func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// writeFence writes body in a fenced code block whose fence is longer than
// any run of backticks in the body, so tool output cannot end it early.
func writeFence(b *strings.Builder, lang, body string) {
	longest, run := 0, 0
	for _, r := range body {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	body = strings.TrimRight(body, "\n")
	fmt.Fprintf(b, "%s%s\n%s\n%s\n", fence, lang, body, fence)
}
