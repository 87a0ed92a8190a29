// NAT detection hashes (RFC 7296 §2.23).

package suite

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// NATDetectionHash returns SHA-1(SPIi | SPIr | IP | port), the data of a
// NAT_DETECTION_SOURCE_IP or NAT_DETECTION_DESTINATION_IP notification.
// IPv4-mapped IPv6 addresses are hashed as IPv4. In the first IKE_SA_INIT
// request SPIr is zero.
func NATDetectionHash(spii, spir message.SPI, ip netip.Addr, port uint16) [sha1.Size]byte {
	var b [8 + 8 + 16 + 2]byte
	copy(b[0:8], spii[:])
	copy(b[8:16], spir[:])
	n := 16
	ip = ip.Unmap()
	if ip.Is4() {
		a := ip.As4()
		n += copy(b[n:], a[:])
	} else {
		a := ip.As16()
		n += copy(b[n:], a[:])
	}
	binary.BigEndian.PutUint16(b[n:], port)
	return sha1.Sum(b[:n+2])
}
