// Package enroll is automatic certificates for chassis: an EST (RFC 7030)
// CA service that issues chassis certificates from the ovs-pki directory
// `ovnsec pki` writes, authenticated by one-time bootstrap tokens (HTTP
// Basic) or by a certificate the CA already issued.
//
// The server side is:
//
//   - Server (server.go): the HTTPS handler for /.well-known/est/cacerts,
//     simpleenroll and simplereenroll, its TLS certificate and its log of
//     every decision;
//   - CAStore (castore.go): the CA certificates served, trusted and used
//     to sign, read from the directory on every change (the seam for CA
//     rollover);
//   - TokenStore (tokens.go): bootstrap tokens stored hashed, one-time
//     unless reusable, consumed atomically with the issue;
//   - the identity rules (identity.go) every request must meet, and the
//     Southbound Chassis/Encap lookup (chassis.go) that --sb-db adds;
//   - the wire formats (pkcs7.go, request.go): base64 PKCS#10 requests and
//     base64 PKCS#7 certs-only answers.
//
// The chassis side is:
//
//   - Client (client.go): cacerts, simpleenroll with the bootstrap token,
//     simplereenroll over mutual TLS, trusting only the CA certificates it
//     is handed;
//   - the trust (trust.go): first contact by a CA file or a CA
//     fingerprint, the CA bundle kept from cacerts (the old and the new CA
//     during a rollover), and the checks of every issued certificate;
//   - Enroller (renew.go): enrolment when the certificate in use is not
//     usable, renewal at a jittered two thirds of its life and under a new
//     CA, back-off, all on the injected clock; the files it writes
//     atomically (files.go) and its status as data (status.go).
package enroll
