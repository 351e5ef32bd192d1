package emulator

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"

	"github.com/dpsconsole/dpsconsole/dps"
)

// twinJSON is the stored form of an initial twin: its tags and desired
// properties as JSON objects. Null values are left out, since in a twin a
// null removes a property (and clients round-trip the TwinCollection
// fields version, count and metadata as null).
func twinJSON(t *dps.InitialTwin) (tags, desired string) {
	tags, desired = "{}", "{}"
	if t == nil {
		return tags, desired
	}
	tags = collectionJSON(t.Tags)
	if t.Properties != nil {
		desired = collectionJSON(t.Properties.Desired)
	}
	return tags, desired
}

func collectionJSON(c dps.TwinCollection) string {
	b, err := json.Marshal(withoutNulls(c))
	if err != nil || len(b) == 0 || string(b) == "null" {
		return "{}" // a TwinCollection decoded from JSON always marshals
	}
	return string(b)
}

func withoutNulls(c map[string]any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		switch v := v.(type) {
		case nil:
		case map[string]any:
			out[k] = withoutNulls(v)
		case dps.TwinCollection:
			out[k] = withoutNulls(v)
		default:
			out[k] = v
		}
	}
	return out
}

// twinCollection decodes a stored tags/desired object.
func twinCollection(s string) dps.TwinCollection {
	c := dps.TwinCollection{}
	if s != "" && s != "{}" {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber() // integers beyond 2^53 stay exact
		d.Decode(&c)  // written by collectionJSON, so valid
	}
	return c
}

// twinETag is IoT Hub's form of a twin ETag: the twin version as 8
// big-endian bytes in base64 ("AAAAAAAAAAE=" for version 1).
func twinETag(version int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(version))
	return base64.StdEncoding.EncodeToString(b[:])
}
