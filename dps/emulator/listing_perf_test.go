package emulator

import (
	"context"
	"testing"
)

// The readers map the database file: a 100,000-record listing reads every
// page of the registrations table, and a read syscall and a copy a page
// cost the emulator about a quarter of its SQLite time.
func TestReadersMapTheDatabase(t *testing.T) {
	s, _, err := openStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var size int64
	if err := s.r.QueryRowContext(context.Background(), `PRAGMA mmap_size`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size < 256<<20 {
		t.Fatalf("readers' mmap_size is %d bytes; want at least 256 MiB", size)
	}
}
