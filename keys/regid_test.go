package keys

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateRegistrationID(t *testing.T) {
	for _, id := range []string{"a", "0", "-", "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", "A.b_c:d-9", "dev-", "x.y", strings.Repeat("a", 128), "UPPER", ".leading", "_x", ":x"} {
		if err := ValidateRegistrationID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
		if _, err := scanRegistrationID([]byte(id)); err != nil {
			t.Errorf("scan %q: %v", id, err)
		}
	}
	for _, tc := range []struct {
		id   string
		pos  int
		rule string
	}{
		{"", 0, "empty"},
		{strings.Repeat("a", 129), 0, "129 characters long; the limit is 128"},
		{"dev 1", 4, "a space"},
		{"dev\t1", 4, "a tab"},
		{"dev\x00", 4, "control character 0x00"},
		{"dev\x7f", 4, "control character 0x7f"},
		{"dév", 2, `non-ASCII character 'é' (U+00E9)`},
		{"d\u200bx", 2, `'\u200b'`},
		{"d\xffx", 2, "byte 0xff (not UTF-8)"},
		{"a/b", 2, `'/' is not allowed`},
		{"a+b", 2, `'+'`},
		{"a#", 2, `'#'`},
		{"dev.", 4, `ends with '.'`},
		{"dev_", 4, `ends with '_'`},
		{"dev:", 4, `ends with ':'`},
		{strings.Repeat("a", 200) + " ", 201, "a space"}, // a bad character is named before the length
	} {
		err := ValidateRegistrationID(tc.id)
		var re *RegistrationIDError
		if !errors.As(err, &re) || re.Pos != tc.pos || !strings.Contains(re.Rule, tc.rule) {
			t.Errorf("%q: %#v, want position %d and rule mentioning %q", tc.id, err, tc.pos, tc.rule)
			continue
		}
		if _, err2 := scanRegistrationID([]byte(tc.id)); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("scan %q: %v, want %v", tc.id, err2, err)
		}
		if tc.pos > 0 && !strings.Contains(err.Error(), "character ") {
			t.Errorf("%q: message %q does not name the position", tc.id, err)
		}
	}
}

func TestRegistrationIDWarning(t *testing.T) {
	if w := RegistrationIDWarning("sn-007"); w != "" {
		t.Errorf("lower case: %q", w)
	}
	w := RegistrationIDWarning("SN-007")
	if !strings.Contains(w, "upper-case") || !strings.Contains(w, "lower-case IDs are recommended") {
		t.Errorf("upper case: %q", w)
	}
	if up, _ := scanRegistrationID([]byte("aBc")); !up {
		t.Error("scan misses upper case")
	}
	if up, _ := scanRegistrationID([]byte("abc")); up {
		t.Error("scan invents upper case")
	}
}
