package serve

import (
	"context"
	"net/url"

	"github.com/gantry-ci/gantry/internal/runtime"
)

var _ runtime.MonitorAgents = (*Client)(nil)

// MonitorAssignments asks the server what a probe agent at location
// checks (GET /api/v1/monitors/assignments).
func (c *Client) MonitorAssignments(ctx context.Context, location string) ([]runtime.MonitorAssignment, error) {
	var out MonitorAssignments
	if err := c.do(ctx, "GET", "/monitors/assignments?location="+url.QueryEscape(location), nil, &out); err != nil {
		return nil, err
	}
	return out.Assignments, nil
}

// ReportMonitors sends a probe agent's results (POST
// /api/v1/monitors/results).
func (c *Client) ReportMonitors(ctx context.Context, location string, reports []runtime.MonitorReport) (runtime.MonitorReportResult, error) {
	var out runtime.MonitorReportResult
	err := c.do(ctx, "POST", "/monitors/results", MonitorReportRequest{Location: location, Reports: reports}, &out)
	return out, err
}
