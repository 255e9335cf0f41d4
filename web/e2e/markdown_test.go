package e2e

import (
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"
)

// markdown.js, case by case, in the browser it is written for: the HTML it
// builds for each input. Model text is untrusted, so the hostile inputs
// matter as much as the formatting.
func TestMarkdown(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain text", "<p>plain text</p>"},
		{"two\nlines\n\nnew paragraph", "<p>two<br>lines</p><p>new paragraph</p>"},
		{"**bold** and *it* and __b2__ and _i2_", "<p><strong>bold</strong> and <em>it</em> and <strong>b2</strong> and <em>i2</em></p>"},
		{"**bold *nested* here**", "<p><strong>bold <em>nested</em> here</strong></p>"},
		{"snake_case_name and 2 * 3 * 4", "<p>snake_case_name and 2 * 3 * 4</p>"},
		{"use `a <b> c` or ``x`y``", "<p>use <code>a &lt;b&gt; c</code> or <code>x`y</code></p>"},
		{"`**not bold**`", "<p><code>**not bold**</code></p>"},
		{"```js\nlet a = '<b>';\n\n**x**\n```\nafter", `<pre><code data-lang="js">let a = '&lt;b&gt;';` + "\n\n" + `**x**</code></pre><p>after</p>`},
		{"```\nunclosed, still streaming", "<pre><code>unclosed, still streaming</code></pre>"},
		{"- one\n- **two**\n  more of two\n\n1. first\n2. second", "<ul><li>one</li><li><strong>two</strong><br>more of two</li></ul><ol><li>first</li><li>second</li></ol>"},
		{"3) third", `<ol start="3"><li>third</li></ol>`},
		{"# Title\n### Small", "<h3>Title</h3><h5>Small</h5>"},
		{"> quoted *text*\n> more", "<blockquote><p>quoted <em>text</em><br>more</p></blockquote>"},
		{"a\n\n---\n\nb", "<p>a</p><hr><p>b</p>"},
		{"| a | b |\n|:--|--:|\n| 1 | **2** |", `<div class="table"><table><thead><tr><th>a</th><th class="align-right">b</th></tr></thead><tbody><tr><td>1</td><td class="align-right"><strong>2</strong></td></tr></tbody></table></div>`},
		{"see [docs](https://example.com/a_b?q=1) now", `<p>see <a href="https://example.com/a_b?q=1" rel="noopener noreferrer" target="_blank">docs</a> now</p>`},
		{"at https://example.com/x_y_z. Done", `<p>at <a href="https://example.com/x_y_z" rel="noopener noreferrer" target="_blank">https://example.com/x_y_z</a>. Done</p>`},
		{"[**bold link**](http://example.com)", `<p><a href="http://example.com/" rel="noopener noreferrer" target="_blank"><strong>bold link</strong></a></p>`},
		// Hostile input: all of it stays text.
		{`<img src=x onerror=alert(1)>`, "<p>&lt;img src=x onerror=alert(1)&gt;</p>"},
		{"<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"},
		{"[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"},
		{"[x](data:text/html,hi) [y](/relative) [z](vbscript:x)", "<p>[x](data:text/html,hi) [y](/relative) [z](vbscript:x)</p>"},
		{`[x](https://e.com/"onmouseover="alert(1))`, `<p>[x](<a href="https://e.com/" rel="noopener noreferrer" target="_blank">https://e.com/</a>"onmouseover="alert(1))</p>`},
		{"```\n</code></pre><script>alert(1)</script>\n```", "<pre><code>&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;</code></pre>"},
		{"| <b>h</b> |\n|---|\n| <i>c</i> |", `<div class="table"><table><thead><tr><th>&lt;b&gt;h&lt;/b&gt;</th></tr></thead><tbody><tr><td>&lt;i&gt;c&lt;/i&gt;</td></tr></tbody></table></div>`},
	}
	inputs := make([]string, len(cases))
	for i, c := range cases {
		inputs[i] = c.in
	}
	b, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gwConfig{})
	tb := openTab(t, newBrowser(t), g.url())
	got := eval[[]string](tb, `import("/static/markdown.js").then(({ render }) => `+string(b)+`.map((src) => {
		const d = document.createElement("div");
		d.append(render(src));
		return d.innerHTML;
	}))`, chromedp.EvalAwaitPromise)
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("render(%q)\n got: %s\nwant: %s", c.in, got[i], c.want)
		}
	}
}
