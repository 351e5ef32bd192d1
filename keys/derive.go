package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// DeriveDeviceKey derives the device key of a registration ID from an
// enrollment-group key: base64(HMAC-SHA256(groupKey, registrationID)).
// The ID is used byte for byte; "ABC" and "abc" give different keys.
func DeriveDeviceKey(groupKey Key, registrationID string) (Key, error) {
	if err := ValidateRegistrationID(registrationID); err != nil {
		return Key{}, err
	}
	return deriveUnchecked(groupKey, registrationID), nil
}

func deriveUnchecked(groupKey Key, registrationID string) Key {
	m := hmac.New(sha256.New, groupKey.b)
	m.Write([]byte(registrationID))
	return Key{b: m.Sum(nil)}
}

// DeriveDeviceKeyString is DeriveDeviceKey on base64 text, for callers that
// hold the group key as typed.
func DeriveDeviceKeyString(groupKey, registrationID string) (string, error) {
	k, err := ParseKey(groupKey)
	if err != nil {
		return "", err
	}
	d, err := DeriveDeviceKey(k, registrationID)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(d.b), nil
}
