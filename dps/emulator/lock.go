package emulator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dpsconsole/dpsconsole/internal/filelock"
)

// lockDataDir takes an exclusive lock on the data dir for the life of the
// emulator: two emulators on one dir would fight over ports and rename each
// other's hubs. The kernel drops the lock when the process dies. (Where
// flock(2) does not exist the lock is not enforced.)
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "emulator.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := filelock.TryLock(f); err != nil {
		f.Close()
		if errors.Is(err, filelock.ErrLocked) {
			return nil, fmt.Errorf("%w: %s; use that emulator (its %s holds the connection strings) or another data dir", ErrDataDirInUse, dir, EnvFile)
		}
		return nil, err
	}
	return f, nil
}
