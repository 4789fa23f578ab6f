package rpc

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	rampartv1 "github.com/rampart-ip/rampart/api/proto/rampart/v1"
	"github.com/rampart-ip/rampart/reputation"
)

// reputationServer implements rampart.v1.Reputation.
type reputationServer struct {
	rampartv1.UnimplementedReputationServer
	s *Server
}

var _ rampartv1.ReputationServer = (*reputationServer)(nil)

// Check answers one address.
func (r *reputationServer) Check(_ context.Context, req *rampartv1.CheckRequest) (*rampartv1.CheckResponse, error) {
	addr, err := parseAddr(req.GetIp())
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if !r.s.opts.Service.Ready() {
		return nil, fmt.Errorf("check: %w", ErrNotReady)
	}
	a := r.s.opts.Service.Check(addr)
	return &rampartv1.CheckResponse{Answer: answerToProto(&a)}, nil
}

// CheckBatch answers many addresses; a bad entry gets an error in its place.
func (r *reputationServer) CheckBatch(ctx context.Context, req *rampartv1.CheckBatchRequest) (*rampartv1.CheckBatchResponse, error) {
	ips := req.GetIps()
	if len(ips) > r.s.opts.MaxBatch {
		return nil, fmt.Errorf("check batch: %w: %d addresses, at most %d", ErrBatchTooLarge, len(ips), r.s.opts.MaxBatch)
	}
	if !r.s.opts.Service.Ready() {
		return nil, fmt.Errorf("check batch: %w", ErrNotReady)
	}
	out := &rampartv1.CheckBatchResponse{Results: make([]*rampartv1.CheckBatchResult, len(ips))}
	for i, ip := range ips {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("check batch: %w", err)
			}
		}
		res := &rampartv1.CheckBatchResult{Ip: ip}
		if addr, err := parseAddr(ip); err != nil {
			res.Result = &rampartv1.CheckBatchResult_Error{Error: err.Error()}
		} else {
			a := r.s.opts.Service.Check(addr)
			res.Result = &rampartv1.CheckBatchResult_Answer{Answer: answerToProto(&a)}
		}
		out.Results[i] = res
	}
	return out, nil
}

// answerToProto converts an answer field by field; the proto mirrors the
// /ip JSON so that both transports tell the same thing.
func answerToProto(a *reputation.Answer) *rampartv1.Answer {
	p := &rampartv1.Answer{
		Ip:          a.IP,
		IsIoc:       a.IsIoC,
		IsActive:    a.IsActive,
		Historical:  a.Historical,
		Score:       a.Score,
		Verdict:     a.Verdict,
		Action:      a.Action,
		Description: a.Description,
		Blacklists:  a.Blacklists,
		Type:        a.Type,
		Metadata: &rampartv1.Metadata{
			Asn:         a.Metadata.ASN,
			Country:     a.Metadata.Country,
			Org:         a.Metadata.Org,
			City:        a.Metadata.City,
			Anonymous:   a.Metadata.Anonymous,
			Vpn:         a.Metadata.VPN,
			Tor:         a.Metadata.Tor,
			Hosting:     a.Metadata.Hosting,
			PublicProxy: a.Metadata.PublicProxy,
		},
	}
	if a.FirstSeen != nil {
		p.FirstSeen = timestamppb.New(*a.FirstSeen)
	}
	if a.LastSeen != nil {
		p.LastSeen = timestamppb.New(*a.LastSeen)
	}
	if len(a.Reasons) > 0 {
		p.Reasons = make([]*rampartv1.Reason, len(a.Reasons))
		for i, r := range a.Reasons {
			p.Reasons[i] = &rampartv1.Reason{Factor: r.Factor, Detail: r.Detail, Weight: r.Weight}
		}
	}
	if len(a.Warnings) > 0 {
		p.Warnings = make([]*rampartv1.Warning, len(a.Warnings))
		for i, w := range a.Warnings {
			p.Warnings[i] = &rampartv1.Warning{List: w.List, Match: w.Match}
		}
	}
	return p
}
