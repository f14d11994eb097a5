// trivy-testdb writes a Trivy vulnerability database (schema 2: trivy.db and metadata.json) holding
// exactly the advisories it is given, with trivy-db's own packages, the version Trivy v0.74.0 reads.
// The real database is an OCI artifact on registries this network cannot reach; a database written
// here lets the scan gate run for real, with advisories a test chooses.
//
// Usage: trivy-testdb ADVISORIES.json DB_DIR
//
// ADVISORIES.json is a list of objects:
//
//	{"id": "CVE-2099-0001", "ecosystem": "debian 12", "package": "openssl",
//	 "fixed": "3.0.20-1~deb12u3", "severity": "HIGH"}
//	{"id": "CVE-2099-0002", "ecosystem": "pip", "package": "cryptography",
//	 "vulnerable": [">=50.0.0, <50.0.3"], "patched": ["50.0.3"], "severity": "HIGH"}
//
// A Debian advisory names the source package and the fixed version (empty: not fixed); a pip one
// the PyPI project and PEP 440 ranges. DB_DIR becomes <trivy --cache-dir>/db.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/bucket"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/vulnerability"
)

type advisory struct {
	ID         string   `json:"id"`
	Ecosystem  string   `json:"ecosystem"`
	Package    string   `json:"package"`
	Fixed      string   `json:"fixed"`
	Vulnerable []string `json:"vulnerable"`
	Patched    []string `json:"patched"`
	Severity   string   `json:"severity"`
}

// source is where an advisory is stored: its bucket, the data source Trivy reports, the value.
type source struct {
	bucket string
	ds     types.DataSource
	value  types.Advisory
}

func locate(a advisory) (source, error) {
	if version, ok := strings.CutPrefix(a.Ecosystem, "debian "); ok {
		return source{
			bucket: bucket.NewDebian(version).Name(),
			ds: types.DataSource{ID: vulnerability.Debian, Name: "Debian Security Tracker",
				URL: "https://salsa.debian.org/security-tracker-team/security-tracker"},
			value: types.Advisory{FixedVersion: a.Fixed},
		}, nil
	}
	if a.Ecosystem == "pip" {
		b, err := bucket.NewPyPI(types.DataSource{ID: vulnerability.GHSA, Name: "GitHub Security Advisory pip",
			URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Apip"})
		if err != nil {
			return source{}, err
		}
		return source{bucket: b.Name(), ds: b.DataSource(),
			value: types.Advisory{VulnerableVersions: a.Vulnerable, PatchedVersions: a.Patched}}, nil
	}
	return source{}, fmt.Errorf("%s: ecosystem %q is not \"debian N\" or \"pip\"", a.ID, a.Ecosystem)
}

func write(advisories []advisory, dir string) error {
	if err := db.Init(dir); err != nil {
		return err
	}
	defer db.Close()
	dbc := db.Config{}
	err := dbc.BatchUpdate(func(tx *bolt.Tx) error {
		// Trivy reads every advisory's details here; the bucket must exist even when empty.
		if _, err := tx.CreateBucketIfNotExists([]byte("vulnerability")); err != nil {
			return err
		}
		for _, a := range advisories {
			src, err := locate(a)
			if err != nil {
				return err
			}
			severity, err := types.NewSeverity(a.Severity)
			if err != nil {
				return fmt.Errorf("%s: %w", a.ID, err)
			}
			if err := dbc.PutDataSource(tx, src.bucket, src.ds); err != nil {
				return err
			}
			if err := dbc.PutAdvisory(tx, []string{src.bucket, a.Package}, a.ID, src.value); err != nil {
				return err
			}
			if err := dbc.PutVulnerability(tx, a.ID, types.Vulnerability{
				Title:          "test advisory for " + a.Package,
				Description:    "Written by trivy-testdb to test the scan gate; not a real vulnerability.",
				Severity:       severity.String(),
				VendorSeverity: types.VendorSeverity{src.ds.ID: severity},
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return metadata.NewClient(dir).Update(metadata.Metadata{
		Version: db.SchemaVersion, UpdatedAt: now, NextUpdate: now.Add(24 * time.Hour), DownloadedAt: now,
	})
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: trivy-testdb ADVISORIES.json DB_DIR")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	var advisories []advisory
	if err == nil {
		err = json.Unmarshal(raw, &advisories)
	}
	if err == nil {
		err = write(advisories, os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trivy-testdb:", err)
		os.Exit(1)
	}
}
