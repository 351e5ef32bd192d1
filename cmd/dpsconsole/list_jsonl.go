package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/inventory"
)

// outputJSONL is the listings' third format: one item a line, passed
// through from the service's pages without decoding (dps raw pagers).
const outputJSONL = "jsonl"

// addListOutputFlag registers --output on a listing.
func addListOutputFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVarP(dst, "output", "o", outputTable,
		"output format: table, json (the service's shape, one array) or jsonl (one item a line, as the service sent it)")
}

// streamJSONL prints a listing as JSON lines; filter may hide an item's
// secrets. Errors read like streamList's.
func streamJSONL(ctx context.Context, out io.Writer, pager *runtime.Pager[dps.RawPage], filter func(json.RawMessage) (json.RawMessage, error)) (int, error) {
	n, err := inventory.WriteJSONLines(ctx, out, pager, filter)
	if err != nil {
		return n, listError(n, err)
	}
	return n, nil
}

// listError words a listing that failed after printing n items.
func listError(n int, err error) error {
	if n == 0 {
		return fmt.Errorf("listing failed: %s", dps.ErrorMessage(err))
	}
	return fmt.Errorf("listing stopped after %d items: %s", n, dps.ErrorMessage(err))
}

// hiddenRaw is hidden for one raw item of a group or enrollment listing: an
// item that names nothing secret goes through byte for byte; one that may
// (keys, a webhook URL, or an escape that could spell either) is decoded,
// hidden and encoded again, as the json output would show it.
func (k enrollmentKind[T]) hiddenRaw(item json.RawMessage) (json.RawMessage, error) {
	lower := bytes.ToLower(item)
	if !bytes.Contains(lower, []byte("webhookurl")) && !bytes.Contains(lower, []byte("primarykey")) &&
		!bytes.Contains(lower, []byte("secondarykey")) && !bytes.Contains(item, []byte(`\u`)) {
		return item, nil
	}
	var v T
	if err := json.Unmarshal(item, &v); err != nil {
		return nil, fmt.Errorf("an item DPS sent is not JSON: %w", err)
	}
	return json.Marshal(k.hidden([]T{v})[0])
}
