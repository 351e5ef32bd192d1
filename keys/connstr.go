package keys

import (
	"errors"
	"fmt"
	"strings"
)

// ConnectionString is a parsed Azure IoT connection string. The service form
// (DPS or IoT Hub) has SharedAccessKeyName; the device form has DeviceID.
// Printing one masks its key; Encode gives the full text.
type ConnectionString struct {
	HostName            string
	SharedAccessKeyName string
	DeviceID            string
	ModuleID            string
	GatewayHostName     string
	SharedAccessKey     Key
}

// ConnectionStringError names the rule a connection string broke. It never
// carries the key.
type ConnectionStringError struct{ Reason string }

func (e *ConnectionStringError) Error() string { return "invalid connection string: " + e.Reason }

var connParts = []string{"HostName", "SharedAccessKeyName", "DeviceId", "ModuleId", "GatewayHostName", "SharedAccessKey"}

// ParseConnectionString parses "Key=Value;..." in either form. Part names are
// matched case-insensitively; a missing, empty, duplicate or unknown part and a
// key that is not valid base64 are errors.
func ParseConnectionString(s string) (ConnectionString, error) {
	var c ConnectionString
	seen := map[string]bool{}
	n := 0
	for part := range strings.SplitSeq(strings.TrimSpace(s), ";") {
		n++
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		// Errors name parts by position or by a known name, never by their
		// text: a malformed part may be a piece of the key.
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return c, &ConnectionStringError{Reason: fmt.Sprintf("part %d has no '='; the form is HostName=...;SharedAccessKeyName=...;SharedAccessKey=...", n)}
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		name := ""
		for _, p := range connParts {
			if strings.EqualFold(k, p) {
				name = p
			}
		}
		switch {
		case name == "" && strings.EqualFold(k, "SharedAccessSignature"):
			return c, &ConnectionStringError{Reason: "it carries a SharedAccessSignature; give the SharedAccessKey instead so tokens can be renewed"}
		case name == "":
			return c, &ConnectionStringError{Reason: fmt.Sprintf("part %d has an unknown name; the names are %s", n, strings.Join(connParts, ", "))}
		case seen[name]:
			return c, &ConnectionStringError{Reason: name + " appears twice"}
		case v == "":
			return c, &ConnectionStringError{Reason: name + " is empty"}
		}
		seen[name] = true
		switch name {
		case "HostName":
			if strings.ContainsAny(v, "/ ") {
				return c, &ConnectionStringError{Reason: "HostName must be a bare host name such as my-dps.azure-devices-provisioning.net, not a URL"}
			}
			c.HostName = v
		case "SharedAccessKeyName":
			c.SharedAccessKeyName = v
		case "DeviceId":
			c.DeviceID = v
		case "ModuleId":
			c.ModuleID = v
		case "GatewayHostName":
			c.GatewayHostName = v
		case "SharedAccessKey":
			key, err := ParseKey(v)
			if err != nil {
				var ke *KeyError
				errors.As(err, &ke)
				return c, &ConnectionStringError{Reason: "SharedAccessKey: " + ke.Rule}
			}
			c.SharedAccessKey = key
		}
	}
	switch {
	case c.HostName == "":
		return c, &ConnectionStringError{Reason: "HostName is missing"}
	case c.SharedAccessKey.IsZero():
		return c, &ConnectionStringError{Reason: "SharedAccessKey is missing"}
	case c.SharedAccessKeyName == "" && c.DeviceID == "":
		return c, &ConnectionStringError{Reason: "it needs SharedAccessKeyName (a service connection string) or DeviceId (a device connection string)"}
	case c.SharedAccessKeyName != "" && c.DeviceID != "":
		return c, &ConnectionStringError{Reason: "it has both SharedAccessKeyName and DeviceId; use a service or a device connection string, not a mix"}
	case c.ModuleID != "" && c.DeviceID == "":
		return c, &ConnectionStringError{Reason: "ModuleId needs a DeviceId"}
	}
	return c, nil
}

// ParseServiceConnectionString parses a DPS or IoT Hub service connection
// string (HostName;SharedAccessKeyName;SharedAccessKey).
func ParseServiceConnectionString(s string) (ConnectionString, error) {
	c, err := ParseConnectionString(s)
	if err == nil && c.IsDevice() {
		return c, &ConnectionStringError{Reason: "this is a device connection string (it has DeviceId); a service connection string has HostName, SharedAccessKeyName and SharedAccessKey — copy it from the shared access policies page"}
	}
	return c, err
}

// ParseDeviceConnectionString parses an IoT Hub device connection string
// (HostName;DeviceId;SharedAccessKey).
func ParseDeviceConnectionString(s string) (ConnectionString, error) {
	c, err := ParseConnectionString(s)
	if err == nil && !c.IsDevice() {
		return c, &ConnectionStringError{Reason: "this is a service connection string (it has SharedAccessKeyName); a device connection string has HostName, DeviceId and SharedAccessKey"}
	}
	return c, err
}

// IsDevice reports whether c is a device connection string.
func (c ConnectionString) IsDevice() bool { return c.DeviceID != "" }

// Encode returns the full connection string, key included.
func (c ConnectionString) Encode() string { return c.format(c.SharedAccessKey.Base64()) }

// String returns the connection string with its key masked.
func (c ConnectionString) String() string { return c.format(Mask) }

// GoString masks the key for %#v too.
func (c ConnectionString) GoString() string { return "keys.ConnectionString(" + c.String() + ")" }

func (c ConnectionString) format(key string) string {
	var b strings.Builder
	add := func(k, v string) {
		if v != "" {
			b.WriteString(k + "=" + v + ";")
		}
	}
	add("HostName", c.HostName)
	add("SharedAccessKeyName", c.SharedAccessKeyName)
	add("DeviceId", c.DeviceID)
	add("ModuleId", c.ModuleID)
	add("GatewayHostName", c.GatewayHostName)
	add("SharedAccessKey", key)
	return strings.TrimSuffix(b.String(), ";")
}
