package keys

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// Format is the record format of bulk output.
type Format string

// Bulk output formats.
const (
	FormatCSV       Format = "csv"  // header registration_id,device_key, then one row per ID
	FormatJSONLines Format = "json" // {"registration_id":"…","device_key":"…"} per line
)

// CSVHeader is the first line of CSV output.
const CSVHeader = "registration_id,device_key\n"

// AppendRecord appends one output record for a validated ID and its base64
// device key. Valid IDs need no quoting in CSV or escaping in JSON.
func (f Format) AppendRecord(dst, registrationID, deviceKey []byte) []byte {
	if f == FormatJSONLines {
		dst = append(dst, `{"registration_id":"`...)
		dst = append(dst, registrationID...)
		dst = append(dst, `","device_key":"`...)
		dst = append(dst, deviceKey...)
		return append(dst, "\"}\n"...)
	}
	dst = append(dst, registrationID...)
	dst = append(dst, ',')
	dst = append(dst, deviceKey...)
	return append(dst, '\n')
}

// LineError is an input line that holds no valid registration ID.
type LineError struct {
	Line int   // 1-based
	Err  error // a *RegistrationIDError
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// StreamOptions tune DeriveStream.
type StreamOptions struct {
	Format  Format // FormatCSV when empty
	Workers int    // goroutines deriving; GOMAXPROCS when 0

	// OnInvalid is called for every invalid line, in input order, from the
	// calling goroutine.
	OnInvalid func(LineError)
}

// StreamStats counts what DeriveStream did.
type StreamStats struct {
	Derived        int // keys written
	Invalid        int // lines reported to OnInvalid
	UpperCase      int // derived IDs with upper-case letters (see RegistrationIDWarning)
	FirstUpperCase int // line of the first of them, 0 when none
}

// Bulk input is cut into blocks of whole lines; workers derive blocks in
// parallel and the caller writes them back in order.
const (
	blockSize       = 256 << 10
	blocksPerWorker = 4
)

type block struct {
	in        []byte // whole lines
	firstLine int
	longLine  bool // in is empty: line firstLine is longer than a block
	out       []byte
	errs      []LineError
	upper     int
	firstUp   int
	derived   int
	done      chan struct{}
}

// DeriveStream reads registration IDs one per line from r and writes a record
// per valid ID to w, in input order, deriving on every core. Surrounding
// white space (a CR included) is trimmed; blank lines and lines starting with
// '#' are skipped; a leading UTF-8 byte-order mark is ignored. Every invalid
// line goes to opts.OnInvalid and the stream goes on. The error is a read or
// write error; invalid lines are not errors.
func (d *Deriver) DeriveStream(r io.Reader, w io.Writer, opts StreamOptions) (StreamStats, error) {
	var st StreamStats
	format := opts.Format
	if format == "" {
		format = FormatCSV
	}
	if format != FormatCSV && format != FormatJSONLines {
		return st, fmt.Errorf("unknown output format %q; use csv or json", format)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	free := make(chan *block, workers*blocksPerWorker)
	for range cap(free) {
		free <- &block{done: make(chan struct{}, 1)} // buffers are made on first use
	}
	work := make(chan *block, cap(free))
	order := make(chan *block, cap(free))
	stop := make(chan struct{}) // closed when the writer gives up
	var readErr error

	go func() { // reader
		defer close(order)
		defer close(work)
		readErr = readBlocks(r, free, stop, func(b *block) {
			order <- b // never blocks: at most cap(free) blocks exist
			work <- b
		})
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			dw := d.clone()
			for b := range work {
				dw.deriveBlock(b, format)
				b.done <- struct{}{}
			}
		})
	}
	defer wg.Wait()

	if format == FormatCSV {
		if _, err := io.WriteString(w, CSVHeader); err != nil {
			close(stop)
			drain(order)
			return st, err
		}
	}
	for b := range order {
		<-b.done
		for _, e := range b.errs {
			st.Invalid++
			if opts.OnInvalid != nil {
				opts.OnInvalid(e)
			}
		}
		st.Derived += b.derived
		st.UpperCase += b.upper
		if st.FirstUpperCase == 0 {
			st.FirstUpperCase = b.firstUp
		}
		if _, err := w.Write(b.out); err != nil {
			close(stop)
			drain(order)
			return st, err
		}
		free <- b
	}
	return st, readErr
}

// drain waits for the blocks still in flight so no goroutine outlives the call.
func drain(order <-chan *block) {
	for b := range order {
		<-b.done
	}
}

var bom = []byte("\uFEFF")

// readBlocks fills free blocks with whole lines from r and hands them to send.
// A line longer than a block is sent as an empty block marked longLine and
// the rest of it is skipped.
func readBlocks(r io.Reader, free <-chan *block, stop <-chan struct{}, send func(*block)) error {
	carry := make([]byte, 0, blockSize) // a partial line left from the previous block
	line := 1
	for first := true; ; first = false {
		var b *block
		select {
		case b = <-free:
		case <-stop:
			return nil
		}
		if b.in == nil {
			b.in = make([]byte, 0, blockSize)
		}
		b.in = append(b.in[:0], carry...)
		eof, err := fill(r, b)
		if err != nil {
			return err
		}
		if first {
			b.in = bytes.TrimPrefix(b.in, bom)
		}
		cut := len(b.in) // at EOF the last line needs no newline
		if !eof {
			cut = bytes.LastIndexByte(b.in, '\n') + 1
		}
		b.firstLine = line
		if cut == 0 && len(b.in) > 0 { // a full block and no newline
			b.in, b.longLine = b.in[:0], true
			send(b)
			if carry, eof, err = skipLine(r, carry[:0]); err != nil || eof {
				return err
			}
			line++
			continue
		}
		carry = append(carry[:0], b.in[cut:]...)
		b.in, b.longLine = b.in[:cut], false
		line += bytes.Count(b.in, []byte{'\n'})
		send(b)
		if eof {
			return nil
		}
	}
}

// fill reads into b until it holds a newline, is full, or r ends. It does
// not wait for a full block, so lines typed into a pipe are answered.
func fill(r io.Reader, b *block) (eof bool, err error) {
	for start := 0; len(b.in) < cap(b.in); {
		n, err := r.Read(b.in[len(b.in):cap(b.in)])
		b.in = b.in[:len(b.in)+n]
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if bytes.IndexByte(b.in[start:], '\n') >= 0 {
			return false, nil
		}
		start = len(b.in)
	}
	return false, nil
}

// skipLine discards input up to the next newline and returns what follows it
// in buf's storage.
func skipLine(r io.Reader, buf []byte) (rest []byte, eof bool, err error) {
	buf = buf[:cap(buf)]
	for {
		n, err := r.Read(buf)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return buf[:copy(buf, buf[i+1:n])], false, nil
		}
		if err == io.EOF {
			return buf[:0], true, nil
		}
		if err != nil {
			return buf[:0], false, err
		}
	}
}

// deriveBlock derives every line of b into b.out.
func (d *Deriver) deriveBlock(b *block, format Format) {
	b.out, b.errs = b.out[:0], b.errs[:0]
	b.upper, b.firstUp, b.derived = 0, 0, 0
	if b.longLine {
		b.errs = append(b.errs, LineError{Line: b.firstLine, Err: &RegistrationIDError{Rule: fmt.Sprintf("the line is longer than %d bytes; the limit is %d characters", blockSize, MaxRegistrationIDLength)}})
		return
	}
	var key [DeviceKeyLen]byte
	rest := b.in
	for n := b.firstLine; len(rest) > 0; n++ {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		upper, err := scanRegistrationID(line)
		if err != nil {
			b.errs = append(b.errs, LineError{Line: n, Err: err})
			continue
		}
		k := d.appendKey(key[:0], line)
		if upper {
			if b.upper == 0 {
				b.firstUp = n
			}
			b.upper++
		}
		b.out = format.AppendRecord(b.out, line, k)
		b.derived++
	}
}
