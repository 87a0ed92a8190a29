// Identities (RFC 7296 §3.5): FQDN names as OVS uses them ("@name" or
// "name") and IP addresses, which strongSwan uses by default in OVS's
// PSK mode.

package ike

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

type identity struct {
	typ  message.IDType
	data []byte
	text string
}

// parseIdentity reads "name", "@name" (FQDN) or an IP address.
func parseIdentity(s string) (identity, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "@")
	if s == "" {
		return identity{}, fmt.Errorf("empty identity")
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		if a.Is4() {
			b := a.As4()
			return identity{message.ID_IPV4_ADDR, b[:], a.String()}, nil
		}
		b := a.As16()
		return identity{message.ID_IPV6_ADDR, b[:], a.String()}, nil
	}
	return identity{message.ID_FQDN, []byte(s), s}, nil
}

func (i identity) payload(responder bool) *message.ID {
	return &message.ID{Responder: responder, IDType: i.typ, Data: i.data}
}

func (i identity) matches(id *message.ID) bool {
	return id != nil && id.IDType == i.typ && bytes.Equal(id.Data, i.data)
}

func (i identity) String() string { return i.text }

// idString renders a received ID for reasons and logs.
func idString(id *message.ID) string {
	switch id.IDType {
	case message.ID_FQDN, message.ID_RFC822_ADDR:
		return fmt.Sprintf("%q", id.Data)
	case message.ID_IPV4_ADDR, message.ID_IPV6_ADDR:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	}
	return fmt.Sprintf("%s:%x", id.IDType, id.Data)
}
