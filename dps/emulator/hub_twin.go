package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/dpsconsole/dpsconsole/dps"
)

// IoT Hub's twin limits: tags 8 KB, desired (and reported) properties 32 KB
// each, objects nested at most 10 deep.
const (
	maxTwinTags       = 8 << 10
	maxTwinProperties = 32 << 10
	maxTwinDepth      = 10
)

// twinArgumentError is a twin write the hub refuses (400 ArgumentInvalid).
type twinArgumentError struct{ msg string }

func (e *twinArgumentError) Error() string { return e.msg }

func twinArgument(format string, a ...any) error {
	return &twinArgumentError{fmt.Sprintf(format, a...)}
}

// serveTwins serves the service side of /twins/{id}: GET reads the twin,
// PATCH merges tags and desired properties into it, PUT replaces them;
// POST /twins/{id}/methods invokes a direct method.
func (e *Emulator) serveTwins(h *hub, w http.ResponseWriter, r *http.Request, rest []string) {
	if !e.hubServiceAuth(h, w, r) {
		return
	}
	id := rest[0]
	switch {
	case len(rest) == 1 && r.Method == http.MethodGet:
		e.hubGetTwin(h, w, r, id)
	case len(rest) == 1 && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		e.hubWriteTwin(h, w, r, id)
	case len(rest) == 2 && strings.EqualFold(rest[1], "methods") && r.Method == http.MethodPost:
		e.hubInvokeMethod(h, w, r, id)
	default:
		writeHubError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" "+r.URL.Path+" is not served by this emulated hub")
	}
}

// hubWriteTwin is PATCH /twins/{id} (a null in the patch removes that
// property) and PUT /twins/{id} (the tags and desired properties become
// the body's). If-Match, when given and not "*", must be the twin's ETag.
func (e *Emulator) hubWriteTwin(h *hub, w http.ResponseWriter, r *http.Request, deviceID string) {
	tags, desired, err := readTwinBody(r.Body)
	if err != nil {
		writeHubError(w, http.StatusBadRequest, "ArgumentInvalid", err.Error())
		return
	}
	var oldDesired string
	change := func(t *twinDoc) error {
		oldDesired = collectionJSON(t.Desired)
		if r.Method == http.MethodPut {
			clear(t.Tags)
			clear(t.Desired)
		}
		mergeTwin(t.Tags, tags)
		mergeTwin(t.Desired, desired)
		return nil
	}
	lock := e.devices.twinWriteLock(h, deviceID)
	lock.Lock()
	defer lock.Unlock()
	d, err := e.store.updateHubTwin(r.Context(), h.Index, deviceID, r.Header.Get("If-Match"), change)
	var arg *twinArgumentError
	switch {
	case errors.Is(err, errNotFound):
		writeHubError(w, http.StatusNotFound, "DeviceNotFound", "Device "+strconv.Quote(deviceID)+" is not registered in "+h.HostName)
	case errors.Is(err, errPrecondition):
		writeHubError(w, http.StatusPreconditionFailed, "PreconditionFailed",
			"412001 the If-Match ETag is not the twin's current one; read the twin again and retry")
	case errors.As(err, &arg):
		writeHubError(w, http.StatusBadRequest, "ArgumentInvalid", arg.msg)
	case err != nil:
		e.hubInternal(w, err)
	default:
		writeTwin(w, d)
		if d.Desired != oldDesired {
			if r.Method == http.MethodPut {
				desired = twinCollection(d.Desired) // a replaced set goes out whole
			}
			e.notifyDesired(h, d, desired)
		}
	}
}

// writeTwin answers with a twin and its ETag.
func writeTwin(w http.ResponseWriter, d hubDevice) {
	w.Header().Set("ETag", `"`+twinETag(d.TwinVersion)+`"`)
	writeJSON(w, http.StatusOK, wireTwin(d))
}

// readTwinBody reads a twin (or patch) body: its tags and desired
// properties, nil when absent. Reported properties are the device's own.
func readTwinBody(body io.Reader) (tags, desired map[string]any, err error) {
	b, err := io.ReadAll(io.LimitReader(body, 4*maxTwinProperties+1))
	if err != nil {
		return nil, nil, errors.New("could not read the request body")
	}
	if len(b) > 4*maxTwinProperties {
		return nil, nil, errors.New("the twin in the request is larger than the hub accepts")
	}
	var t struct {
		Tags       json.RawMessage `json:"tags"`
		Properties *struct {
			Desired  json.RawMessage `json:"desired"`
			Reported json.RawMessage `json:"reported"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, nil, fmt.Errorf("the body is not a twin JSON object: %v", err)
	}
	if tags, err = twinObject("tags", t.Tags, false); err != nil {
		return nil, nil, err
	}
	if t.Properties != nil {
		if isJSONObject(t.Properties.Reported) {
			return nil, nil, errors.New("properties.reported cannot be written from the service side; the device reports them")
		}
		if desired, err = twinObject("properties.desired", t.Properties.Desired, true); err != nil {
			return nil, nil, err
		}
	}
	return tags, desired, nil
}

func isJSONObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// twinObject decodes one twin section (absent or null = nil) and checks its
// names and depth. Properties may carry the read-only $version and
// $metadata (a twin read and written back does), which are dropped.
func twinObject(what string, raw json.RawMessage, properties bool) (map[string]any, error) {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	if !isJSONObject(raw) {
		return nil, twinArgument("%s must be a JSON object", what)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, twinArgument("%s: %v", what, err)
	}
	if properties {
		delete(m, "$version")
		delete(m, "$metadata")
	}
	return m, checkTwinNames(what, m, 1)
}

// Integer twin values IoT Hub takes: 53-bit signed.
const (
	minTwinInt = -4503599627370496
	maxTwinInt = 4503599627370495
)

// checkTwinNames applies IoT Hub's rules for twin keys: not empty, at most
// 1 KB, no '.', '$', space or control characters; objects at most 10 deep;
// integers within ±2^52.
func checkTwinNames(path string, m map[string]any, depth int) error {
	if depth > maxTwinDepth {
		return twinArgument("%s is nested deeper than the hub's %d levels", path, maxTwinDepth)
	}
	for k, v := range m {
		if k == "" || len(k) > 1024 || strings.ContainsFunc(k, func(c rune) bool { return c == '.' || c == '$' || c == ' ' || c < 0x20 || (c >= 0x7f && c < 0xa0) }) {
			return twinArgument("%s has the key %q; twin keys must be 1 to 1024 bytes without '.', '$', spaces or control characters", path, k)
		}
		switch v := v.(type) {
		case map[string]any:
			if err := checkTwinNames(path+"."+k, v, depth+1); err != nil {
				return err
			}
		case json.Number:
			if n, err := v.Int64(); !strings.ContainsAny(string(v), ".eE") && (err != nil || n < minTwinInt || n > maxTwinInt) {
				return twinArgument("%s.%s is %s; twin integers are %d to %d", path, k, v, int64(minTwinInt), int64(maxTwinInt))
			}
		}
	}
	return nil
}

// mergeTwin merges patch into dst as IoT Hub does: objects merge key by
// key, a null removes the key, any other value replaces it.
func mergeTwin(dst, patch map[string]any) {
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			cur, ok := dst[k].(map[string]any)
			if !ok {
				cur = map[string]any{}
			}
			mergeTwin(cur, v)
			dst[k] = cur
		default:
			dst[k] = v
		}
	}
}

// checkTwinSizes checks a twin after a write, its sections as stored,
// against the hub's size limits.
func checkTwinSizes(tags, desired, reported string) error {
	for _, part := range []struct {
		what string
		json string
		max  int
	}{{"tags", tags, maxTwinTags}, {"desired properties", desired, maxTwinProperties}, {"reported properties", reported, maxTwinProperties}} {
		if n := len(part.json); n > part.max {
			return twinArgument("the twin's %s would be %d bytes; the hub allows %d", part.what, n, part.max)
		}
	}
	return nil
}

// withVersion is a stored properties object as the hub shows it, with its
// $version.
func withVersion(stored string, version int64) dps.TwinCollection {
	c := twinCollection(stored)
	c["$version"] = version
	return c
}
