// Engine port kind by name: ovnsecd's --engine-port-type reads the kind of
// the engine's port on br-phy through ParsePortKind, so the command knows
// the native backend's vocabulary without importing the data path.

package native

import (
	"fmt"
	"strings"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
)

// DefaultPortKind is the engine port kind ovnsecd uses when none is named:
// a veth pair, read and written in batches.
const DefaultPortKind = ovsbridge.PortVeth

// portKinds are the kinds ParsePortKind accepts, in the order its error
// lists them; their names are ovsbridge.PortKind.String.
func portKinds() []ovsbridge.PortKind {
	return []ovsbridge.PortKind{ovsbridge.PortVeth, ovsbridge.PortTAP}
}

// ParsePortKind reads an engine port kind by name, in any case: "veth"
// (ovsbridge.PortVeth) or "tap" (ovsbridge.PortTAP). The empty string is
// DefaultPortKind.
func ParsePortKind(s string) (ovsbridge.PortKind, error) {
	if s == "" {
		return DefaultPortKind, nil
	}
	var names []string
	for _, k := range portKinds() {
		if strings.EqualFold(s, k.String()) {
			return k, nil
		}
		names = append(names, k.String())
	}
	return 0, fmt.Errorf("unknown engine port type %q: want %s", s, strings.Join(names, " or "))
}
