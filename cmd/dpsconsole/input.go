package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/keys"
)

// openInput opens a file named on the command line ("-" is stdin, where
// stdin is not nil); what names it in messages, e.g. "--input". A file that
// cannot be opened, or a directory, is a command-line mistake.
func openInput(what, path string, stdin io.Reader) (io.Reader, func() error, error) {
	if path == "-" {
		if stdin == nil { // standard input is another flag's, or not for a secret
			return nil, nil, usagef("%s takes a file, not standard input (-)", what)
		}
		return stdin, func() error { return nil }, nil
	}
	f, err := os.Open(path)
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && fi.IsDir() {
			err = errors.New("is a directory")
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, nil, fileError("read", what, path, err)
	}
	return f, f.Close, nil
}

// readInput reads a whole small file named on the command line (a key).
func readInput(what, path string) ([]byte, error) {
	r, closeFile, err := openInput(what, path, nil)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fileError("read", what, path, err)
	}
	return b, nil
}

// openPrivate opens path for writing (flag adds os.O_TRUNC or os.O_APPEND)
// with mode 0600, also when it exists with a wider mode: it may hold secrets.
func openPrivate(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|flag, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil { // OpenFile keeps an existing file's mode
		f.Close()
		return nil, err
	}
	return f, nil
}

// fileError is a usage error about a file named on the command line that
// could not be read (verb) or created. The path is said once: an
// *fs.PathError repeats it ("read adir: read adir: is a directory").
func fileError(verb, what, path string, err error) error {
	return usagef("cannot %s %s %s: %v", verb, what, shown(path), pathless(err))
}

// shown is s as it may be echoed to a terminal: as is when it is plain
// text, quoted and escaped (%q) when it holds a control character or is not
// UTF-8, so input cannot move the cursor or split a message line.
func shown(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// readLines calls fn with every line of r, numbered from 1, without its line
// end (LF or CRLF). A leading UTF-8 byte-order mark is skipped. A line longer
// than max bytes is not kept: fn gets it as nil with tooLong set, and the
// lines after it are read as usual. The error is a read error.
func readLines(r io.Reader, max int, fn func(n int, line []byte, tooLong bool)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for n := 1; ; n++ {
		line = line[:0]
		tooLong, eof := false, false
		for {
			chunk, err := br.ReadSlice('\n')
			if !tooLong && len(line)+len(chunk) <= max+2 { // +2: the CRLF
				line = append(line, chunk...)
			} else {
				tooLong, line = true, line[:0]
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				eof = true
				break
			}
			if err != nil {
				return err
			}
			break
		}
		if eof && len(line) == 0 && !tooLong {
			return nil
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) > max {
			tooLong, line = true, nil
		}
		if tooLong {
			fn(n, nil, true)
		} else {
			fn(n, line, false)
		}
		if eof {
			return nil
		}
	}
}

// checkID refuses an invalid registration or group ID given on the command
// line, before any request; what names it, e.g. "group ID" or "--group".
func checkID(what, id string) error {
	var e *keys.RegistrationIDError
	if !errors.As(keys.ValidateRegistrationID(id), &e) {
		return nil
	}
	at := ""
	if e.Pos > 0 {
		at = fmt.Sprintf("character %d: ", e.Pos)
	}
	return usagef("invalid %s %q: %s%s", what, id, at, e.Rule)
}

// checkIDs is checkID for several IDs; it names every invalid one.
func checkIDs(what string, ids []string) error {
	var errs []error
	for _, id := range ids {
		if err := checkID(what, id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// pathless is err without the path an *fs.PathError adds, for a message that
// names the file itself.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// idArgs takes one ID argument (with many, one or more) and checks each with
// checkID, so an invalid ID is a usage error before any request.
func idArgs(what string, many bool) cobra.PositionalArgs {
	count := cobra.ExactArgs(1)
	if many {
		count = cobra.MinimumNArgs(1)
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := count(cmd, args); err != nil {
			return err
		}
		return checkIDs(what, args)
	}
}
