// Package suite holds the cryptography of IKEv2 (RFC 7296) as ovnsec
// negotiates it: HMAC-SHA2 PRFs, AES-GCM-16 for SK payloads and ESP keys,
// DH groups 14, 19 and 31, and AUTH with PSK or signatures.
//
//	prf, _ := suite.NewPRF(message.PRF_HMAC_SHA2_256)
//	dh, _ := suite.NewDH(message.CURVE_25519, nil)      // KE data: dh.Public()
//	gir, err := dh.Shared(peerKE.Data)                    // validates the peer value
//	p := suite.Params{PRF: ..., Encr: message.ENCR_AES_GCM_16, KeyBits: 256}
//	keys, _ := suite.NewIKEKeys(p, gir, ni, nr, spii, spir) // SK_d, SK_e*, SK_p*
//	out, _ := suite.NewAEAD(p.Encr, keys.Ei)   // initiator: seals with Ei, opens with Er
//	in, _ := suite.NewAEAD(p.Encr, keys.Er)    // (*AEAD is a message.Sealer and Opener)
//
// AUTH (RFC 7296 §2.15): signed := SignedOctets(prf, keys.Pi, myFirstMessage,
// peerNonce, myID.Body()), then PSKAuth(prf, secret, signed) or
// Sign(key, method, scheme, signed); verify with VerifyPSKAuth / Verify.
// Signatures cover methods 1 (RSA, SHA-1), 9–11 (ECDSA, RFC 4754) and 14
// (RFC 7427 with the AlgorithmIdentifiers of SigScheme).
//
// Child SAs: DeriveChildKeys(prf, keys.D, childParams, gir or nil, ni, nr)
// yields ESP key|salt for initiator→responder and responder→initiator.
// IKE SA rekey: RekeySKEYSEED with the old PRF and SK_d, then DeriveIKEKeys.
//
// NATDetectionHash builds the NAT_DETECTION_*_IP notification data.
//
// Secrets are of type Key, which never prints (fmt, slog) and has Zero;
// call Zero on IKEKeys/ChildKeys when an SA is deleted. cipher.AEAD and
// ecdh private keys keep internal copies that Go cannot wipe.
package suite
