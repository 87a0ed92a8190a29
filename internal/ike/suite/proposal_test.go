// Tests of FromProposal.

package suite

import (
	"testing"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

func TestFromProposal(t *testing.T) {
	encr := func(bits uint16) message.Transform {
		return message.Transform{Type: message.TransformENCR, ID: uint16(message.ENCR_AES_GCM_16), Attributes: message.KeyLengthAttr(bits)}
	}
	prf := message.Transform{Type: message.TransformPRF, ID: uint16(message.PRF_HMAC_SHA2_256)}
	dh := message.Transform{Type: message.TransformDH, ID: uint16(message.MODP_2048)}
	esn := message.Transform{Type: message.TransformESN, ID: uint16(message.ESNOn)}
	none := message.Transform{Type: message.TransformINTEG, ID: uint16(message.AUTH_NONE)}
	tests := []struct {
		name  string
		proto message.ProtocolID
		ts    []message.Transform
		want  Chosen
		ok    bool
	}{
		{"ike", message.ProtoIKE, []message.Transform{encr(256), prf, dh}, Chosen{Params: Params{PRF: message.PRF_HMAC_SHA2_256, Encr: message.ENCR_AES_GCM_16, KeyBits: 256}, DH: message.MODP_2048}, true},
		{"ike integ none", message.ProtoIKE, []message.Transform{encr(128), prf, none, dh}, Chosen{Params: Params{PRF: message.PRF_HMAC_SHA2_256, Encr: message.ENCR_AES_GCM_16, KeyBits: 128}, DH: message.MODP_2048}, true},
		{"esp", message.ProtoESP, []message.Transform{encr(256), esn}, Chosen{Params: Params{Encr: message.ENCR_AES_GCM_16, KeyBits: 256}, ESN: true}, true},
		{"esp pfs", message.ProtoESP, []message.Transform{encr(128), dh}, Chosen{Params: Params{Encr: message.ENCR_AES_GCM_16, KeyBits: 128}, DH: message.MODP_2048}, true},
		{"two encr", message.ProtoIKE, []message.Transform{encr(256), encr(128), prf, dh}, Chosen{}, false},
		{"no key length", message.ProtoESP, []message.Transform{{Type: message.TransformENCR, ID: 20}}, Chosen{}, false},
		{"no encr", message.ProtoESP, []message.Transform{esn}, Chosen{}, false},
		{"ike without dh", message.ProtoIKE, []message.Transform{encr(256), prf}, Chosen{}, false},
		{"ike with esn", message.ProtoIKE, []message.Transform{encr(256), prf, dh, esn}, Chosen{}, false},
		{"esp with prf", message.ProtoESP, []message.Transform{encr(256), prf}, Chosen{}, false},
		{"gcm with integ", message.ProtoESP, []message.Transform{encr(256), {Type: message.TransformINTEG, ID: 12}}, Chosen{}, false},
		{"ah", message.ProtoAH, []message.Transform{encr(256)}, Chosen{}, false},
		{"unknown type", message.ProtoESP, []message.Transform{encr(256), {Type: 9}}, Chosen{}, false},
		{"bad esn", message.ProtoESP, []message.Transform{encr(256), {Type: message.TransformESN, ID: 7}}, Chosen{}, false},
		{"unsupported prf", message.ProtoIKE, []message.Transform{encr(256), {Type: message.TransformPRF, ID: 2}, dh}, Chosen{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromProposal(&message.Proposal{Num: 1, Protocol: tc.proto, Transforms: tc.ts})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			if tc.ok && got != tc.want {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
		})
	}
}
