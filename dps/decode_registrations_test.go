package dps

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func samplePage(n int) []byte {
	now := time.Date(2026, 11, 22, 20, 2, 50, 516335200, time.UTC)
	items := make([]DeviceRegistrationState, n)
	for i := range items {
		items[i] = DeviceRegistrationState{RegistrationID: fmt.Sprintf("sensor-%07d", i), DeviceID: fmt.Sprintf("sensor-%07d", i),
			AssignedHub: "contoso-hub.azure-devices.net", Status: StatusAssigned, Substatus: SubstatusInitialAssignment,
			ETag: "IjY5MDAzNTUyLTAwMDAtMDMwMC0wMDAwLTYzMGZkYThhMDAwMCI=", CreatedDateTimeUTC: now, LastUpdatedDateTimeUTC: now}
	}
	items[n/2].ErrorCode, items[n/2].ErrorMessage, items[n/2].Status = 400208, "hub not specified", StatusFailed
	items[n/3].Payload = json.RawMessage(`{"fw":"1.2","tags":["a","b"]}`)
	items[n/4].SymmetricKey = &SymmetricKeyRegistrationResult{EnrollmentGroupID: "fleet"}
	b, err := json.Marshal(items)
	if err != nil {
		panic(err)
	}
	return b
}

var decodeSeeds = []string{
	`[]`, ` [ ] `, `null`, `[null]`, `[{}]`, `{}`, `[`, `[{"registrationId":"a"},]`, `[{"registrationId":"a"}] x`,
	`[{"registrationId":"a\"b","etag":"\u0041"}]`,
	`[{"REGISTRATIONID":"a"}]`, `[{"registrationid":"a","registrationId":"b"}]`,
	`[{"registrationId":null,"status":"assigned","errorCode":null,"createdDateTimeUtc":null}]`,
	`[{"errorCode":1.5}]`, `[{"errorCode":01}]`, `[{"errorCode":-0}]`, `[{"errorCode":2147483648}]`, `[{"errorCode":"7"}]`,
	`[{"createdDateTimeUtc":"2022-08-31T22:02:50.5163352Z"}]`, `[{"createdDateTimeUtc":"yesterday"}]`,
	`[{"payload":null},{"payload":{"a":[1,{"b":"}"}]}},{"payload":"x"},{"payload":[1,2] }]`,
	`[{"payload":{"a":}}]`, `[{"symmetricKey":{"enrollmentGroupId":"g"}},{"symmetricKey":null},{"symmetricKey":5}]`,
	`[{"future":{"x":[1,2,{"y":"z"}]},"registrationId":"a","other":true}]`, `[{"future":tru}]`,
	"[{\"deviceId\":\"\xff\"}]", "[{\"deviceId\":\"a\tb\"}]", `[{"registrationId":"a" "deviceId":"b"}]`,
	`[{"status":"assigned"}, {"status":"failed"}]`,
	`[{"x":"\`, `[{"payload":{"\`,
}

// FuzzDecodeRegistrationStates checks the direct decoder against
// encoding/json: the same records, and an error exactly when it errs.
func FuzzDecodeRegistrationStates(f *testing.F) {
	f.Add(samplePage(5))
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want []DeviceRegistrationState
		wantErr := json.Unmarshal(data, &want)
		got, err := decodeRegistrationStates(data)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, encoding/json %v", data, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
		}
	})
}

func TestFastDecoderTakesTheCommonPath(t *testing.T) {
	// The page shape DPS (and the emulator) sends must not fall back.
	if _, ok := fastRegistrationStates(samplePage(100)); !ok {
		t.Fatal("a plain page fell back to encoding/json")
	}
}

// BenchmarkDecodeRegistrationStates compares the direct decoder with
// encoding/json on a page of 1,000 records.
func BenchmarkDecodeRegistrationStates(b *testing.B) {
	page := samplePage(1000)
	for _, d := range []struct {
		name   string
		decode func([]byte) ([]DeviceRegistrationState, error)
	}{{"encoding-json", decodeJSON[DeviceRegistrationState]}, {"direct", decodeRegistrationStates}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				if _, err := d.decode(page); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
		})
	}
}
