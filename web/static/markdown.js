// A small, safe Markdown renderer for model output. It builds DOM nodes with
// createElement and text nodes only — never innerHTML — so whatever a model
// writes (<script>, <img onerror=…>, javascript: links) ends up as text.
//
// Supported: paragraphs (single newlines kept as line breaks), fenced code
// blocks (an unclosed fence runs to the end, so a block renders while it
// streams), headings, block quotes, flat bullet and numbered lists, inline
// code, **bold**, *italic*, [links](https://…), bare http(s) URLs and
// GitHub-style tables. Links go only to http: and https:; anything else is
// shown as the text it was.

const fence = /^\s{0,3}(`{3,}|~{3,})\s*([\w+.-]*)\s*$/;
const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const quote = /^\s{0,3}>\s?(.*)$/;
const bullet = /^\s{0,3}[-*+]\s+(.*)$/;
const numbered = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const rule = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const tableSep = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

// render returns a DocumentFragment for text.
export function render(text) {
  const out = document.createDocumentFragment();
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let para = null; // lines of the paragraph being collected
  let list = null; // {el, ordered} of the list being collected
  const flush = () => {
    if (para) out.append(paragraph(para));
    para = null;
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if ((m = fence.exec(line))) {
      flush();
      const open = m[1];
      const body = [];
      for (i++; i < lines.length && !closes(lines[i], open); i++) body.push(lines[i]);
      out.append(codeBlock(body.join("\n"), m[2]));
      continue;
    }
    if (line.trim() === "") {
      flush();
      continue;
    }
    if ((m = heading.exec(line))) {
      flush();
      const h = el("h" + Math.min(6, m[1].length + 2)); // a reply's "# Title" should not outshout the page
      inline(h, m[2]);
      out.append(h);
      continue;
    }
    if (rule.test(line) && !para) {
      flush();
      out.append(el("hr"));
      continue;
    }
    if ((m = quote.exec(line))) {
      flush();
      const q = el("blockquote");
      const body = [m[1]];
      while (i + 1 < lines.length && (m = quote.exec(lines[i + 1]))) {
        body.push(m[1]);
        i++;
      }
      q.append(render(body.join("\n")));
      out.append(q);
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && lines[i + 1].includes("|") && tableSep.test(lines[i + 1])) {
      flush();
      const rows = [line];
      const align = cells(lines[i + 1]).map((c) => (c.endsWith(":") ? (c.startsWith(":") ? "center" : "right") : ""));
      for (i += 2; i < lines.length && lines[i].includes("|") && lines[i].trim() !== ""; i++) rows.push(lines[i]);
      i--;
      out.append(table(rows, align));
      continue;
    }
    const b = bullet.exec(line);
    const n = b ? null : numbered.exec(line);
    if (b || n) {
      const ordered = !!n;
      if (para) {
        out.append(paragraph(para));
        para = null;
      }
      if (!list || list.ordered !== ordered) {
        list = { el: el(ordered ? "ol" : "ul"), ordered };
        if (n && n[1] !== "1") list.el.start = Number(n[1]);
        out.append(list.el);
      }
      const li = el("li");
      inline(li, b ? b[1] : n[2]);
      list.el.append(li);
      continue;
    }
    if (list && /^\s+\S/.test(line)) {
      // An indented line continues the last list item.
      const li = list.el.lastChild;
      li.append(el("br"));
      inline(li, line.trim());
      continue;
    }
    list = null;
    (para ??= []).push(line);
  }
  flush();
  return out;
}

// closes reports whether line ends a fence opened with open: the same
// character, at least as many times, and nothing else.
function closes(line, open) {
  const t = line.trim();
  return t.length >= open.length && t === open[0].repeat(t.length);
}

function el(tag) {
  return document.createElement(tag);
}

function paragraph(lines) {
  const p = el("p");
  lines.forEach((l, i) => {
    if (i > 0) p.append(el("br"));
    inline(p, l);
  });
  return p;
}

// cells splits a table row on "|", without the optional outer pipes.
function cells(row) {
  return row
    .trim()
    .replace(/^\|/, "")
    .replace(/\|$/, "")
    .split("|")
    .map((c) => c.trim());
}

// table renders rows (the header first) with the separator's alignments,
// as classes: the CSP allows no inline styles.
function table(rows, align) {
  const t = el("table");
  rows.forEach((row, r) => {
    const tr = el("tr");
    cells(row).forEach((c, j) => {
      const cell = el(r === 0 ? "th" : "td");
      if (align[j]) cell.className = "align-" + align[j];
      inline(cell, c);
      tr.append(cell);
    });
    (r === 0 ? (t.tHead ??= t.createTHead()) : (t.tBodies[0] ?? t.createTBody())).append(tr);
  });
  const wrap = el("div");
  wrap.className = "table";
  wrap.append(t);
  return wrap;
}

function codeBlock(text, lang) {
  const pre = el("pre");
  const code = el("code");
  if (lang) code.dataset.lang = lang;
  code.textContent = text;
  pre.append(code);
  return pre;
}

// One pass over inline syntax: the earliest match wins; the text between
// matches is plain text. Group numbers are used in inline() below.
const inlineRe = new RegExp(
  [
    /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/, // 1,2: code span
    /\[([^\]\n]+)\]\(([^()\s]+)\)/, // 3,4: link
    /\*\*(?=\S)([\s\S]*?\S)\*\*/, // 5: bold
    /(?<![\w])__(?=\S)([\s\S]*?\S)__(?![\w])/, // 6: bold
    /\*(?=[^\s*])([^*]*?[^\s*]|[^\s*])\*/, // 7: italic
    /(?<![\w])_(?=[^\s_])([^_]*?[^\s_]|[^\s_])_(?![\w])/, // 8: italic
    /(https?:\/\/[^\s<>"'`]*[^\s<>"'`.,;:!?)\]*_])/, // 9: bare URL
  ]
    .map((r) => r.source)
    .join("|"),
  "g",
);

// inline appends the inline content of text to parent. inLink stops links
// nesting inside link text.
function inline(parent, text, inLink = false) {
  let last = 0;
  const re = new RegExp(inlineRe); // a copy: inline() recurses
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    last = re.lastIndex;
    if (m[2] !== undefined) {
      const c = el("code");
      c.textContent = m[2];
      parent.append(c);
    } else if (m[3] !== undefined) {
      const a = !inLink && link(m[4]);
      if (a) {
        inline(a, m[3], true);
        parent.append(a);
      } else {
        parent.append(m[0]);
      }
    } else if (m[5] !== undefined || m[6] !== undefined) {
      const s = el("strong");
      inline(s, m[5] ?? m[6], inLink);
      parent.append(s);
    } else if (m[7] !== undefined || m[8] !== undefined) {
      const e = el("em");
      inline(e, m[7] ?? m[8], inLink);
      parent.append(e);
    } else if (m[9] !== undefined) {
      const a = !inLink && link(m[9]);
      if (a) a.textContent = m[9];
      parent.append(a || m[9]);
    }
  }
  if (last < text.length) parent.append(text.slice(last));
}

// link returns an <a> for an http(s) URL, or null for anything else
// (javascript:, data:, relative paths).
function link(href) {
  let u;
  try {
    u = new URL(href);
  } catch {
    return null;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return null;
  const a = el("a");
  a.href = u.href;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  return a;
}
