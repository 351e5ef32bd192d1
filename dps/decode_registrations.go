package dps

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeRegistrationStates decodes a page of registration records, the hot
// path of listing a large group (100,000 records and more). It reads the
// fields DPS sends directly, several times faster than encoding/json's
// reflection; anything it does not expect (escapes in strings, keys in another
// case, unexpected types, invalid JSON) goes to encoding/json instead, so the
// result is always what json.Unmarshal gives. FuzzDecodeRegistrationStates
// checks that.
func decodeRegistrationStates(data []byte) ([]DeviceRegistrationState, error) {
	if out, ok := fastRegistrationStates(data); ok {
		return out, nil
	}
	var out []DeviceRegistrationState
	err := json.Unmarshal(data, &out)
	return out, err
}

// fastRegistrationStates is the direct decoder; ok is false when it gave up.
func fastRegistrationStates(data []byte) (out []DeviceRegistrationState, ok bool) {
	s := scanner{b: data}
	s.space()
	if !s.consume('[') {
		return nil, false
	}
	out = make([]DeviceRegistrationState, 0, len(data)/256+1) // records are about 300 bytes
	s.space()
	if !s.consume(']') {
		for {
			s.space()
			var st DeviceRegistrationState
			if !s.registrationState(&st) {
				return nil, false
			}
			out = append(out, st)
			s.space()
			if s.consume(']') {
				break
			}
			if !s.consume(',') {
				return nil, false
			}
		}
	}
	s.space()
	return out, s.i == len(s.b)
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plainString reads a string with no escapes and valid UTF-8 (what DPS
// sends), returning its contents without the quotes.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[s.i:j]
			s.i = j + 1
			return v, utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

func (s *scanner) null() bool {
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// value returns the extent of the next value, valid JSON or not ok.
func (s *scanner) value() ([]byte, bool) {
	start, depth, inString := s.i, 0, false
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case inString:
			if c == '\\' {
				s.i++
			} else if c == '"' {
				inString = false
				if depth == 0 {
					s.i++
					return s.validated(start)
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return s.validated(start)
			}
			if depth--; depth == 0 {
				s.i++
				return s.validated(start)
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return s.validated(start)
		}
	}
	return s.validated(start)
}

func (s *scanner) validated(start int) ([]byte, bool) {
	if s.i > len(s.b) { // a backslash ended the input
		s.i = len(s.b)
		return nil, false
	}
	v := s.b[start:s.i]
	return v, len(v) > 0 && json.Valid(v)
}

// registrationState reads one object into st.
func (s *scanner) registrationState(st *DeviceRegistrationState) bool {
	if !s.consume('{') {
		return false
	}
	s.space()
	if s.consume('}') {
		return true
	}
	for {
		s.space()
		key, ok := s.plainString()
		if !ok {
			return false
		}
		s.space()
		if !s.consume(':') {
			return false
		}
		s.space()
		if !s.field(st, key) {
			return false
		}
		s.space()
		if s.consume('}') {
			return true
		}
		if !s.consume(',') {
			return false
		}
	}
}

// field reads the value of key into st.
func (s *scanner) field(st *DeviceRegistrationState, key []byte) bool {
	var str *string
	switch string(key) {
	case "registrationId":
		str = &st.RegistrationID
	case "assignedHub":
		str = &st.AssignedHub
	case "deviceId":
		str = &st.DeviceID
	case "errorMessage":
		str = &st.ErrorMessage
	case "etag":
		str = &st.ETag
	case "status":
		return s.stringInto((*string)(&st.Status))
	case "substatus":
		return s.stringInto((*string)(&st.Substatus))
	case "createdDateTimeUtc", "lastUpdatedDateTimeUtc":
		t := &st.CreatedDateTimeUTC
		if key[0] == 'l' {
			t = &st.LastUpdatedDateTimeUTC
		}
		start := s.i
		if !s.null() {
			if _, ok := s.plainString(); !ok {
				return false
			}
		}
		return t.UnmarshalJSON(s.b[start:s.i]) == nil
	case "errorCode":
		if s.null() {
			return true
		}
		n, ok := s.int32()
		st.ErrorCode = n
		return ok
	case "payload":
		v, ok := s.value()
		st.Payload = append(st.Payload[:0], v...)
		return ok
	case "symmetricKey":
		v, ok := s.value()
		if !ok {
			return false
		}
		if string(v) == "null" {
			st.SymmetricKey = nil
			return true
		}
		var r SymmetricKeyRegistrationResult
		if st.SymmetricKey != nil {
			r = *st.SymmetricKey
		}
		st.SymmetricKey = &r
		return json.Unmarshal(v, &r) == nil
	default:
		for _, name := range registrationStateFields {
			if bytes.EqualFold(key, []byte(name)) {
				return false // encoding/json matches keys case-insensitively
			}
		}
		_, ok := s.value() // a field this client does not know
		return ok
	}
	return s.stringInto(str)
}

var registrationStateFields = []string{"registrationId", "createdDateTimeUtc", "assignedHub", "deviceId", "status", "substatus",
	"errorCode", "errorMessage", "lastUpdatedDateTimeUtc", "etag", "payload", "symmetricKey"}

func (s *scanner) stringInto(dst *string) bool {
	if s.null() {
		return true
	}
	v, ok := s.plainString()
	*dst = string(v)
	return ok
}

// int32 reads an integer as JSON writes it: -?(0|[1-9][0-9]*).
func (s *scanner) int32() (int32, bool) {
	start := s.i
	s.consume('-')
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i-digits > 1) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 32)
	return int32(n), err == nil
}
