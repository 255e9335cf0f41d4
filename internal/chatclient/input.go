package chatclient

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// lineSource hands input lines to the client's loop one at a time, when the
// loop asks (next). Asking is how the loop paces input: in line mode a
// script's next message waits for the reply to the previous one, and in
// terminal mode the prompt of the next line is drawn only after the loop has
// set it for what the line started.
type lineSource struct {
	lines chan string   // closed when input ends
	next  chan struct{} // one request for one line
	err   error         // why input ended; read only after lines is closed
}

// newLineSource starts the goroutine that calls read on request. It exits
// when read fails or done is closed; a read blocked on a terminal or a pipe
// cannot be cancelled, so a goroutine blocked there ends with the process
// (or when its reader is closed).
func newLineSource(read func() (string, error), done <-chan struct{}) *lineSource {
	s := &lineSource{lines: make(chan string), next: make(chan struct{}, 1)}
	go func() {
		defer close(s.lines)
		for {
			select {
			case <-s.next:
			case <-done:
				return
			}
			line, err := read()
			if err != nil {
				s.err = err
				return
			}
			select {
			case s.lines <- line:
			case <-done:
				return
			}
		}
	}()
	return s
}

// readPlainLine reads one line of a pipe or file, without its line ending.
// A last line without a newline still counts.
func readPlainLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// Control bytes of a terminal in raw mode.
const (
	ctrlC = 0x03
	ctrlU = 0x15 // term.Terminal: erase the line before the cursor
)

// errKick makes term.Terminal.ReadLine return early; see keys.
var errKick = errors.New("chatclient: redraw the prompt")

// keys is the terminal's input as term.Terminal reads it. A pump goroutine
// reads the terminal all the time, so Ctrl-C is seen even between two
// ReadLine calls, and Read can be kicked: ReadLine then returns errKick, and
// calling it again draws the prompt, which term.Terminal otherwise only does
// when a line starts or when output is written over a line being edited.
type keys struct {
	in         chan []byte
	kick       chan struct{}
	interrupts chan struct{} // one per Ctrl-C
	enters     chan int      // how many line ends (Enter) keys bring, before term sees them
	buf        []byte
	err        error // why the input ended; read only after in is closed
}

func newKeys(r io.Reader, done <-chan struct{}) *keys {
	k := &keys{in: make(chan []byte, 16), kick: make(chan struct{}, 1), interrupts: make(chan struct{}, 4), enters: make(chan int)}
	go k.pump(r, done)
	return k
}

func (k *keys) pump(r io.Reader, done <-chan struct{}) {
	defer close(k.in)
	for {
		b := make([]byte, 1024)
		n, err := r.Read(b)
		b = b[:n]
		for i, c := range b {
			if c != ctrlC {
				continue
			}
			// In raw mode Ctrl-C is a byte, not SIGINT. term.Terminal would
			// end ReadLine with io.EOF, as for Ctrl-D; instead it clears the
			// line being typed, as a shell does, and interrupts.
			b[i] = ctrlU
			select {
			case k.interrupts <- struct{}{}:
			case <-done:
				return
			}
		}
		if ends := bytes.Count(b, []byte{'\r'}) + bytes.Count(b, []byte{'\n'}); ends > 0 {
			// Said before term reads them (unbuffered: the client has
			// heard), so that the client holds its output until the lines
			// arrive: see client.loop.
			select {
			case k.enters <- ends:
			case <-done:
				return
			}
		}
		if n > 0 {
			select {
			case k.in <- b:
			case <-done:
				return
			}
		}
		if err != nil {
			k.err = err
			return
		}
	}
}

// Read is called by term.Terminal only, from one goroutine at a time.
func (k *keys) Read(p []byte) (int, error) {
	if len(k.buf) == 0 {
		select {
		case b, ok := <-k.in:
			if !ok {
				if k.err == nil { // the client stopped the pump
					return 0, io.EOF
				}
				return 0, k.err
			}
			k.buf = b
		case <-k.kick:
			return 0, errKick
		}
	}
	n := copy(p, k.buf)
	k.buf = k.buf[n:]
	return n, nil
}

// redraw makes a pending or future ReadLine return errKick once.
func (k *keys) redraw() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}
