package inventory

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
)

// WriteJSONLines writes every item of pager's pages to w as one line each,
// exactly as DPS sent it, flushing after every page so a listing shows as it
// arrives. filter, when not nil, may replace an item (to hide its secrets).
// It returns how many items it wrote; on an error, those written stay whole
// lines.
func WriteJSONLines(ctx context.Context, w io.Writer, pager *runtime.Pager[dps.RawPage], filter func(json.RawMessage) (json.RawMessage, error)) (int, error) {
	lw := lineWriter{w: bufio.NewWriterSize(w, 256<<10)}
	n := 0
	err := eachPage(ctx, pager, func(page dps.RawPage) error {
		for _, item := range page.Items {
			var err error
			if filter != nil {
				item, err = filter(item)
			}
			if err == nil {
				err = lw.line(item)
			}
			if err != nil {
				return err
			}
		}
		n += len(page.Items)
		return lw.w.Flush()
	})
	return n, firstErr(err, lw.w.Flush())
}

// lineWriter writes JSON values as JSON lines.
type lineWriter struct {
	w       *bufio.Writer
	scratch bytes.Buffer // for compacting an item that spans lines
}

// line writes item as one line: byte for byte as DPS sent it, unless DPS
// spread it over several (a raw newline in JSON is always whitespace, never
// part of a string), in which case it is compacted.
func (lw *lineWriter) line(item json.RawMessage) error {
	if bytes.IndexByte(item, '\n') >= 0 {
		lw.scratch.Reset()
		if err := json.Compact(&lw.scratch, item); err != nil {
			return fmt.Errorf("an item DPS sent is not JSON: %w", err)
		}
		item = lw.scratch.Bytes()
	}
	lw.w.Write(item)
	return lw.w.WriteByte('\n')
}
