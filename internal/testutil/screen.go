package testutil

import (
	"strconv"
	"strings"
)

// Replay draws out on a terminal of the given width with no scrolling
// limit, as an xterm does: printable runes (wrapping at the right margin
// before the next rune, not at once), CR, LF (raw mode: no CR added), tab,
// and the CSI sequences term.Terminal and the client write (cursor up,
// down, forward, back; erase to the end of the line or of the screen).
// Rows are returned without trailing blanks.
func Replay(out string, width int) []string {
	var rows [][]rune
	row, col, wrap := 0, 0, false
	grow := func() {
		for len(rows) <= row {
			rows = append(rows, nil)
		}
		for len(rows[row]) < width {
			rows[row] = append(rows[row], ' ')
		}
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\r':
			col, wrap = 0, false
		case r == '\n':
			row, wrap = row+1, false
		case r == '\t':
			col = min((col/8+1)*8, width-1)
		case r == 0x1b && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == ';' || rs[j] == '?') {
				j++
			}
			if j == len(rs) {
				break
			}
			n, err := strconv.Atoi(string(rs[i+2 : j]))
			if err != nil || n == 0 {
				n = 1
			}
			grow()
			switch rs[j] {
			case 'A':
				row = max(row-n, 0)
			case 'B':
				row += n
			case 'C':
				col = min(col+n, width-1)
			case 'D':
				col = max(col-n, 0)
			case 'K':
				for k := col; k < width; k++ {
					rows[row][k] = ' '
				}
			case 'J':
				for k := col; k < width; k++ {
					rows[row][k] = ' '
				}
				rows = rows[:row+1]
			}
			wrap = false
			i = j
		default:
			if wrap {
				row, col, wrap = row+1, 0, false
			}
			grow()
			rows[row][col] = r
			if col == width-1 {
				wrap = true
			} else {
				col++
			}
		}
	}
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = strings.TrimRight(string(r), " ")
	}
	return lines
}
