package emulator

import (
	"strings"
	"sync"
)

// Stats are server-side counts that tests of clients (cleanup above all)
// check their work against.
type Stats struct {
	RegistrationDeletes map[string]int // successful DELETE /registrations/{id}, by lower-cased registration ID
	HubDeviceDeletes    map[string]int // successful hub device deletes, by "hubHostName/deviceId"
	Throttled           int            // 429 answers sent
}

type stats struct {
	mu        sync.Mutex
	regDel    map[string]int
	hubDel    map[string]int
	throttled int
}

func (s *stats) registrationDeleted(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.regDel == nil {
		s.regDel = map[string]int{}
	}
	s.regDel[strings.ToLower(id)]++
}

// hubDeviceDeleted is called by the hub API when a device identity is deleted.
func (s *stats) hubDeviceDeleted(hubHost, deviceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hubDel == nil {
		s.hubDel = map[string]int{}
	}
	s.hubDel[hubHost+"/"+deviceID]++
}

func (s *stats) throttledOnce() {
	s.mu.Lock()
	s.throttled++
	s.mu.Unlock()
}

// Stats returns a copy of the counts since Start.
func (e *Emulator) Stats() Stats {
	s := &e.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{RegistrationDeletes: map[string]int{}, HubDeviceDeletes: map[string]int{}, Throttled: s.throttled}
	for k, v := range s.regDel {
		out.RegistrationDeletes[k] = v
	}
	for k, v := range s.hubDel {
		out.HubDeviceDeletes[k] = v
	}
	return out
}
