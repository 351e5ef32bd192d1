package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
)

// ErrNoGroupKey is returned when derivation is asked of the zero Key.
var ErrNoGroupKey = errors.New("no enrollment-group key was given")

// DeriveDeviceKey derives the device key of a registration ID from an
// enrollment-group key: base64(HMAC-SHA256(groupKey, registrationID)).
// The ID is used byte for byte; "ABC" and "abc" give different keys.
func DeriveDeviceKey(groupKey Key, registrationID string) (Key, error) {
	if groupKey.IsZero() {
		return Key{}, ErrNoGroupKey
	}
	if err := ValidateRegistrationID(registrationID); err != nil {
		return Key{}, err
	}
	m := hmac.New(sha256.New, groupKey.Bytes())
	m.Write([]byte(registrationID))
	return newKey(m.Sum(nil)), nil
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
	return d.Base64(), nil
}

// DeviceKeyLen is the length of a derived device key in base64 (32 bytes).
const DeviceKeyLen = 44

// Deriver derives many device keys from one group key. It keeps the HMAC
// with its inner and outer SHA-256 states precomputed, so a key costs two
// SHA-256 blocks and no allocation. A Deriver is not safe for concurrent
// use; give each goroutine its own.
type Deriver struct {
	groupKey Key
	mac      hash.Hash
	msg      []byte            // the registration ID, copied so hash.Write does not allocate
	sum      [sha256.Size]byte // the raw device key of the last derivation
}

// NewDeriver returns a Deriver bound to groupKey.
func NewDeriver(groupKey Key) (*Deriver, error) {
	if groupKey.IsZero() {
		return nil, ErrNoGroupKey
	}
	d := &Deriver{groupKey: groupKey, mac: hmac.New(sha256.New, groupKey.Bytes()), msg: make([]byte, 0, MaxRegistrationIDLength)}
	d.mac.Reset() // the first Reset saves the keyed states; later ones restore them
	return d, nil
}

// DeviceKey validates registrationID and derives its device key.
func (d *Deriver) DeviceKey(registrationID string) (Key, error) {
	if err := ValidateRegistrationID(registrationID); err != nil {
		return Key{}, err
	}
	d.msg = append(d.msg[:0], registrationID...)
	d.derive()
	return KeyFromBytes(d.sum[:]), nil
}

// AppendDeviceKey validates registrationID and appends the base64 device key
// to dst. It does not allocate when dst has room for DeviceKeyLen bytes.
func (d *Deriver) AppendDeviceKey(dst, registrationID []byte) ([]byte, error) {
	if _, err := scanRegistrationID(registrationID); err != nil {
		return dst, err
	}
	return d.appendKey(dst, registrationID), nil
}

// appendKey derives the key of an ID already validated and appends it in base64.
func (d *Deriver) appendKey(dst, registrationID []byte) []byte {
	d.mac.Reset()
	d.mac.Write(registrationID)
	d.mac.Sum(d.sum[:0])
	return appendBase64Key(dst, &d.sum)
}

func (d *Deriver) derive() {
	d.mac.Reset()
	d.mac.Write(d.msg)
	d.mac.Sum(d.sum[:0])
}

// appendBase64Key is base64.StdEncoding.AppendEncode for a 32-byte key at
// twice its speed: each 3-byte group becomes two 2-character table entries.
func appendBase64Key(dst []byte, sum *[sha256.Size]byte) []byte {
	dst = slices.Grow(dst, DeviceKeyLen)
	n := len(dst)
	out := (*[DeviceKeyLen]byte)(dst[n : n+DeviceKeyLen])
	for i := range 10 {
		v := uint32(sum[3*i])<<16 | uint32(sum[3*i+1])<<8 | uint32(sum[3*i+2])
		binary.LittleEndian.PutUint32(out[4*i:], uint32(base64Pairs[v>>12])|uint32(base64Pairs[v&0xfff])<<16)
	}
	v := uint32(sum[30])<<16 | uint32(sum[31])<<8
	binary.LittleEndian.PutUint32(out[40:], uint32(base64Pairs[v>>12])|uint32(base64Std[v>>6&63])<<16|'='<<24)
	return dst[:n+DeviceKeyLen]
}

const base64Std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// base64Pairs maps 12 bits to their two base64 characters, little-endian.
var base64Pairs = func() (t [1 << 12]uint16) {
	for i := range t {
		t[i] = uint16(base64Std[i>>6]) | uint16(base64Std[i&63])<<8
	}
	return t
}()

// clone returns a fresh Deriver for the same group key, for another goroutine.
func (d *Deriver) clone() *Deriver {
	c, _ := NewDeriver(d.groupKey) // d holds a valid key, so this cannot fail
	return c
}

// Format masks the Deriver for every fmt verb: it holds key material.
func (d *Deriver) Format(f fmt.State, _ rune) { io.WriteString(f, "keys.Deriver{"+Mask+"}") }
