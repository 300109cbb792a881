package cartimage

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of ImageGenerationService's refusals.
const Domain = "imagegenerationservice.hipstershop"

// refusal is what the kit reads from a gRPC error: its code and the service's google.rpc details.
type refusal struct {
	code       codes.Code
	reason     string        // ErrorInfo.reason when the domain is the service's ("" otherwise)
	problem    string        // the first BadRequest field violation's description
	retryAfter time.Duration // RetryInfo.retry_delay (0: none)
}

// readRefusal decodes err; ok is false when err is not a gRPC status.
func readRefusal(err error) (refusal, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return refusal{}, false
	}
	r := refusal{code: st.Code()}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == Domain {
				r.reason = d.GetReason()
			}
		case *errdetails.BadRequest:
			if violations := d.GetFieldViolations(); len(violations) > 0 && r.problem == "" {
				r.problem = violations[0].GetDescription()
			}
		case *errdetails.RetryInfo:
			r.retryAfter = d.GetRetryDelay().AsDuration()
		}
	}
	return r, true
}
