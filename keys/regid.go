package keys

import (
	"fmt"
	"strings"
)

// MaxRegistrationIDLength is the longest registration ID DPS accepts.
const MaxRegistrationIDLength = 128

// RegistrationIDError names the rule a registration ID breaks and where.
type RegistrationIDError struct {
	Pos  int // 1-based character position, 0 when the rule is about the whole ID
	Rule string
}

func (e *RegistrationIDError) Error() string {
	if e.Pos > 0 {
		return fmt.Sprintf("invalid registration ID: character %d: %s", e.Pos, e.Rule)
	}
	return "invalid registration ID: " + e.Rule
}

// ValidateRegistrationID checks the DPS rules: 1 to 128 characters from
// A-Z a-z 0-9 - . _ :, the last one alphanumeric or '-'.
func ValidateRegistrationID(id string) error {
	if id == "" {
		return &RegistrationIDError{Rule: "it is empty; give 1 to 128 characters"}
	}
	if len(id) > MaxRegistrationIDLength {
		return &RegistrationIDError{Rule: fmt.Sprintf("it is %d characters long; the limit is %d", len(id), MaxRegistrationIDLength)}
	}
	for i := 0; i < len(id); i++ {
		if !regIDChar[id[i]] {
			return &RegistrationIDError{Pos: i + 1, Rule: fmt.Sprintf("%s is not allowed; use only letters, digits and - . _ :", describeByte(id, i))}
		}
	}
	if last := id[len(id)-1]; last == '.' || last == '_' || last == ':' {
		return &RegistrationIDError{Pos: len(id), Rule: fmt.Sprintf("the ID ends with %q; the last character must be a letter, a digit or '-'", last)}
	}
	return nil
}

// RegistrationIDWarning returns advice for a valid ID that will work but may
// surprise: upper case letters derive a different key than their lower case
// form. It returns "" when there is nothing to say.
func RegistrationIDWarning(id string) string {
	if strings.ToLower(id) != id {
		return "the ID has upper-case letters: keys are derived over the exact bytes, so " +
			"it derives a different key than its lower-case form; lower-case IDs are recommended"
	}
	return ""
}

var regIDChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._:" {
		t[c] = true
	}
	return t
}()

func describeByte(s string, i int) string {
	c := s[i]
	switch {
	case c == ' ':
		return "a space"
	case c == '\t':
		return "a tab"
	case c < 0x20 || c == 0x7f:
		return fmt.Sprintf("control character 0x%02x", c)
	case c >= 0x80:
		return "a non-ASCII character"
	default:
		return fmt.Sprintf("%q", c)
	}
}
