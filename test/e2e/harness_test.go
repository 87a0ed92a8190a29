// Harness glue for the end-to-end tests.
package e2e

import (
	"testing"

	"github.com/ovnsec/ovnsec/test/harness"
)

type daemon = harness.Daemon

func buildBinaries(t *testing.T) string { return harness.Binaries(t) }
