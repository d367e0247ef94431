// Command canopyctl talks to a running Canopy: today, the remediator's
// approvals and audit trail.
//
//	canopyctl [-address http://localhost:9009] [-tenant team-a] remediation pending
//	canopyctl remediation approve <id>
//	canopyctl remediation deny <id>
//	canopyctl remediation audit [-fingerprint f] [-limit n]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "canopyctl:", err)
		os.Exit(2)
	}
}

const usage = `usage: canopyctl [-address URL] [-tenant ID] remediation <command>

commands:
  pending                            the actions waiting for approval
  approve <id>                       approve one
  deny <id>                          deny one
  audit [-fingerprint F] [-limit N]  the audit trail (newest last)`

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("canopyctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	address := fs.String("address", envOr("CANOPY_ADDRESS", "http://localhost:9009"), "Canopy's HTTP address (or $CANOPY_ADDRESS).")
	tenant := fs.String("tenant", os.Getenv("CANOPY_TENANT"), "The tenant (X-Scope-OrgID; or $CANOPY_TENANT); empty: none sent.")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w\n%s", err, usage)
	}
	rest := fs.Args()
	if len(rest) < 2 || rest[0] != "remediation" {
		return errors.New(usage)
	}
	c := client{base: strings.TrimSuffix(*address, "/"), tenant: *tenant, http: &http.Client{Timeout: 30 * time.Second}}
	switch rest[1] {
	case "pending":
		return c.pending(out)
	case "approve", "deny":
		if len(rest) != 3 {
			return fmt.Errorf("remediation %s needs an approval id\n%s", rest[1], usage)
		}
		if err := c.call(http.MethodPost, "/remediation/v1/approvals/"+url.PathEscape(rest[2])+"/"+rest[1], nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %sd\n", rest[2], rest[1])
		return nil
	case "audit":
		afs := flag.NewFlagSet("audit", flag.ContinueOnError)
		afs.SetOutput(io.Discard)
		fp := afs.String("fingerprint", "", "Only this alert's records.")
		limit := afs.Int("limit", 50, "The newest this many records.")
		if err := afs.Parse(rest[2:]); err != nil {
			return fmt.Errorf("%w\n%s", err, usage)
		}
		return c.audit(out, *fp, *limit)
	}
	return fmt.Errorf("unknown remediation command %q\n%s", rest[1], usage)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type client struct {
	base, tenant string
	http         *http.Client
}

func (c client) call(method, path string, into any) error {
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.tenant)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if into != nil {
		return json.NewDecoder(bytes.NewReader(body)).Decode(into)
	}
	return nil
}

func (c client) pending(out io.Writer) error {
	var res struct {
		Data []struct {
			ID, Tenant, Playbook, Action, Target string
			Step                                 int
			Expires                              time.Time
		} `json:"data"`
	}
	if err := c.call(http.MethodGet, "/remediation/v1/approvals", &res); err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPLAYBOOK\tSTEP\tACTION\tTARGET\tEXPIRES")
	for _, a := range res.Data {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", a.ID, a.Playbook, a.Step, a.Action, a.Target, a.Expires.Format(time.RFC3339))
	}
	return w.Flush()
}

func (c client) audit(out io.Writer, fingerprint string, limit int) error {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if fingerprint != "" {
		q.Set("fingerprint", fingerprint)
	}
	var res struct {
		Data []struct {
			Time                                                  time.Time
			Alert, Fingerprint, Playbook, Action, Target, Message string
			Decision                                              string
			Step                                                  int
		} `json:"data"`
	}
	if err := c.call(http.MethodGet, "/remediation/v1/audit?"+q.Encode(), &res); err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tALERT\tFINGERPRINT\tPLAYBOOK\tSTEP\tDECISION\tTARGET\tMESSAGE")
	for _, r := range res.Data {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Time.Format(time.RFC3339), r.Alert, r.Fingerprint, r.Playbook, r.Step, r.Decision, r.Target, r.Message)
	}
	return w.Flush()
}
