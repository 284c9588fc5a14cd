package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are PEM files of a throwaway certificate authority, a server
// certificate for 127.0.0.1 and a client certificate, all ECDSA P-256.
type Certs struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string

	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// NewCerts writes a fresh CA and the certificates it signs into a
// temporary directory of the test.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	caKey, caDER := issue(t, "etcdtest CA", nil, nil, x509.KeyUsageCertSign, nil)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	c := &Certs{CA: writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER), dir: dir, caCert: caCert, caKey: caKey}
	sKey, sDER := issue(t, "etcd server", caCert, caKey, x509.KeyUsageDigitalSignature,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
	c.ServerCert = writePEM(t, dir, "server.pem", "CERTIFICATE", sDER)
	c.ServerKey = writeKey(t, dir, "server-key.pem", sKey)
	cKey, cDER := issue(t, "etcdgate probe", caCert, caKey, x509.KeyUsageDigitalSignature,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	c.ClientCert = writePEM(t, dir, "client.pem", "CERTIFICATE", cDER)
	c.ClientKey = writeKey(t, dir, "client-key.pem", cKey)
	return c
}

// IssueClient writes a client certificate with subject common name cn,
// signed by the CA, and returns its certificate and key files.
func (c *Certs) IssueClient(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	key, der := issue(t, cn, c.caCert, c.caKey, x509.KeyUsageDigitalSignature,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	name := fmt.Sprintf("client-%x", sha256.Sum256([]byte(cn)))[:20]
	return writePEM(t, c.dir, name+".pem", "CERTIFICATE", der), writeKey(t, c.dir, name+"-key.pem", key)
}

// ClientTLS returns a client configuration presenting the client
// certificate and trusting the CA.
func (c *Certs) ClientTLS() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(c.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// issue creates a key and a certificate for it, signed by parent (self-
// signed, as a CA, when parent is nil).
func issue(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey,
	usage x509.KeyUsage, ext []x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     usage,
		ExtKeyUsage:  ext,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	signer := key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent = tmpl
	} else {
		signer = parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func writeKey(t testing.TB, dir, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "EC PRIVATE KEY", der)
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
