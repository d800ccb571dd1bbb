package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runCerts writes the certificates and keys a local control plane needs into a directory,
// keeping the files that are already there:
//
//	ca.crt, ca.key                              cluster CA (serving and client certificates)
//	apiserver.crt, apiserver.key                kube-apiserver serving certificate
//	apiserver-kubelet-client.crt, .key          kube-apiserver's client certificate for kubelets
//	front-proxy-ca.crt, .key                    CA of the aggregation layer's client
//	front-proxy-client.crt, .key                kube-apiserver's client certificate for aggregated APIs
//	sa.key, sa.pub                              service-account token signing key pair
func runCerts(args []string) int {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	dir := fs.String("dir", ".", "directory to write into")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "comma-separated IPs and DNS names of the API server")
	serviceIP := fs.String("service-ip", "10.0.0.1", "the kubernetes Service's cluster IP")
	days := fs.Int("days", 365, "validity in days")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := writeCerts(*dir, strings.Split(*hosts, ","), *serviceIP, time.Duration(*days)*24*time.Hour); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		return 1
	}
	return 0
}

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func writeCerts(dir string, hosts []string, serviceIP string, validity time.Duration) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := loadOrCreate(dir, "ca", validity, nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "realcluster-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	})
	if err != nil {
		return err
	}
	serving := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	}
	for _, h := range append(hosts, serviceIP) {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(h); ip != nil {
			serving.IPAddresses = append(serving.IPAddresses, ip)
		} else if h != "" {
			serving.DNSNames = append(serving.DNSNames, h)
		}
	}
	if _, err := loadOrCreate(dir, "apiserver", validity, ca, serving); err != nil {
		return err
	}
	if _, err := loadOrCreate(dir, "apiserver-kubelet-client", validity, ca, clientTemplate(
		"kube-apiserver-kubelet-client", "kubeadm:cluster-admins")); err != nil {
		return err
	}
	frontProxyCA, err := loadOrCreate(dir, "front-proxy-ca", validity, nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "realcluster-front-proxy-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	})
	if err != nil {
		return err
	}
	if _, err := loadOrCreate(dir, "front-proxy-client", validity, frontProxyCA, clientTemplate(
		"front-proxy-client")); err != nil {
		return err
	}
	return writeServiceAccountKeys(dir)
}

func clientTemplate(cn string, groups ...string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: groups},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// loadOrCreate returns NAME.crt/NAME.key from dir, or creates them from template, signed by
// parent (self-signed when parent is nil).
func loadOrCreate(dir, name string, validity time.Duration, parent *keyPair, template *x509.Certificate) (*keyPair, error) {
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if kp, err := load(certPath, keyPath); err == nil {
		return kp, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	template.SerialNumber = serial
	template.NotBefore = now.Add(-time.Hour)
	template.NotAfter = now.Add(validity)
	signerCert, signerKey := template, crypto.Signer(key)
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signerCert, key.Public(), signerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writePEM(keyPath, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key}, nil
}

func load(certPath, keyPath string) (*keyPair, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s is not PEM", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", keyPath)
	}
	return &keyPair{cert: cert, key: signer}, nil
}

func writeServiceAccountKeys(dir string) error {
	keyPath, pubPath := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if _, err := os.Stat(keyPath); err == nil {
		if _, err := os.Stat(pubPath); err == nil {
			return nil
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pub, 0o644)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
