package dps

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
)

// ParseTwinCollection decodes s as one JSON object, numbers kept exact (a
// twin's values round-trip unchanged).
func ParseTwinCollection(s string) (TwinCollection, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var c TwinCollection
	if err := d.Decode(&c); err != nil || c == nil || d.More() {
		return nil, errors.New("not a JSON object")
	}
	return c, nil
}

// Compact is the property set on one line without $version and $metadata,
// "{}" when nothing else is set.
func (c TwinCollection) Compact() string {
	c = maps.Clone(c)
	delete(c, "$version")
	delete(c, "$metadata")
	if len(c) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(c)
	return string(b)
}
