package natsauth

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/google/uuid"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Names the permissions are written for. They are the agent's contract
// (agent.ConsumerName, agent.LeaseBucket, protocol.StreamName and
// protocol.StreamSubjects; a test checks they agree), spelled here because
// the agent's own tests start servers through this package.
const (
	agentStream       = "ACCOUNTDB_AGENT"
	agentSubjects     = "accountdb.agent.>"
	agentConsumer     = "agent_vm"
	agentLeaseBucket  = "ACCOUNTDB_AGENT_LEASE"
	clusterRegistered = bus.SubjectPrefix + "*.cluster.cluster_registered"
)

// Role is what a user may do on the bus.
type Role string

const (
	// RoleCore is the relay, projectors, API feeds and ingest: it publishes
	// ACCOUNTDB_EVENTS and manages every stream.
	RoleCore Role = "core"
	// RoleAgent reads VM requests and cluster registrations, publishes on
	// ACCOUNTDB_AGENT only and uses its lease bucket.
	RoleAgent Role = "agent"
	// RoleSubscriber is an external, read-only reader of one tenant's
	// events through one durable consumer of its own.
	RoleSubscriber Role = "subscriber"
)

// User is a credential to issue.
type User struct {
	Role Role
	// Tenant and Consumer (a label, [a-z0-9_-]{1,32}) for RoleSubscriber.
	Tenant   uuid.UUID
	Consumer string
	// Expires, zero for never (components); subscribers should expire.
	Expires time.Time
}

// Core and Agent are the components' users.
func Core() User  { return User{Role: RoleCore} }
func Agent() User { return User{Role: RoleAgent} }

// Subscriber is tenant's read-only user for the consumer labelled label.
func Subscriber(tenant uuid.UUID, label string, expires time.Time) User {
	return User{Role: RoleSubscriber, Tenant: tenant, Consumer: label, Expires: expires}
}

var labelPattern = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// ConsumerName is the durable consumer on ACCOUNTDB_EVENTS a subscriber's
// credential may create and read: the tenant is part of the name, so no
// two tenants' consumers share one, and the credential names it literally,
// so it reaches no other consumer.
func (u User) ConsumerName() string { return "tenant_" + u.Tenant.String() + "_" + u.Consumer }

// FilterSubject is a subscriber's subject filter: its tenant's events.
func (u User) FilterSubject() string { return bus.SubjectPrefix + u.Tenant.String() + ".>" }

// InboxPrefix is the prefix of the user's reply subjects (nats.CustomInboxPrefix):
// a user may subscribe to its own inbox only, so it never sees the replies
// (JetStream deliveries included) meant for another.
func (u User) InboxPrefix() string {
	if u.Role == RoleSubscriber {
		return "_INBOX_" + u.ConsumerName()
	}
	return "_INBOX_" + string(u.Role)
}

// Name is the user's name in its JWT (and the server's connection list).
func (u User) Name() string {
	if u.Role == RoleSubscriber {
		return "accountdb-" + u.ConsumerName()
	}
	return "accountdb-" + string(u.Role)
}

func (u User) validate() error {
	switch u.Role {
	case RoleCore, RoleAgent:
		return nil
	case RoleSubscriber:
		if u.Tenant == uuid.Nil {
			return errors.New("natsauth: a subscriber needs a tenant")
		}
		if !labelPattern.MatchString(u.Consumer) {
			return fmt.Errorf("natsauth: consumer label %q: want 1 to 32 of a-z, 0-9, _ and -", u.Consumer)
		}
		return nil
	}
	return fmt.Errorf("natsauth: unknown role %q", u.Role)
}

// Permissions is what the server lets u publish and subscribe to.
func (u User) Permissions() jwt.Permissions {
	inbox := u.InboxPrefix() + ".>"
	switch u.Role {
	case RoleCore:
		return jwt.Permissions{
			Pub: jwt.Permission{Allow: []string{bus.StreamSubjects, "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"}},
			Sub: jwt.Permission{Allow: []string{inbox}},
		}
	case RoleAgent:
		events, lease := bus.StreamName, "KV_"+agentLeaseBucket
		return jwt.Permissions{
			Pub: jwt.Permission{Allow: []string{
				agentSubjects,
				"$JS.API.INFO",
				"$JS.API.STREAM.INFO." + events,
				"$JS.API.STREAM.INFO." + agentStream,
				"$JS.API.STREAM.CREATE." + agentStream,
				"$JS.API.STREAM.UPDATE." + agentStream,
				// The VM request consumer (several filters, so the filter is
				// not in the subject) and the registry's ordered consumers,
				// filtered on cluster registrations.
				"$JS.API.CONSUMER.CREATE." + events + "." + agentConsumer,
				"$JS.API.CONSUMER.INFO." + events + "." + agentConsumer,
				"$JS.API.CONSUMER.CREATE." + events + ".*." + clusterRegistered,
				"$JS.API.CONSUMER.MSG.NEXT." + events + ".*",
				"$JS.ACK." + events + "." + agentConsumer + ".>",
				// The lease bucket: key-value API, its stream and consumers.
				"$KV." + agentLeaseBucket + ".>",
				"$JS.API.*.*." + lease,
				"$JS.API.*.*." + lease + ".>",
				"$JS.API.CONSUMER.MSG.NEXT." + lease + ".*",
				"$JS.API.STREAM.MSG.GET." + lease,
				"$JS.ACK." + lease + ".>",
				"$JS.FC." + lease + ".>",
			}},
			Sub: jwt.Permission{Allow: []string{inbox}},
		}
	default:
		events, name := bus.StreamName, u.ConsumerName()
		return jwt.Permissions{
			Pub: jwt.Permission{Allow: []string{
				"$JS.API.INFO",
				// The server refuses a create whose subject's filter differs
				// from the configuration's, so this pins the consumer's filter
				// to the tenant's subjects (or a narrower one).
				"$JS.API.CONSUMER.CREATE." + events + "." + name + "." + u.FilterSubject(),
				"$JS.API.CONSUMER.INFO." + events + "." + name,
				"$JS.API.CONSUMER.DELETE." + events + "." + name,
				"$JS.API.CONSUMER.MSG.NEXT." + events + "." + name,
				"$JS.ACK." + events + "." + name + ".>",
			}},
			Sub: jwt.Permission{Allow: []string{inbox}},
		}
	}
}

// Creds issues u's credentials file (a user JWT signed by the account key
// and the user's own seed), as nats.UserCredentials reads it.
func (k *Keys) Creds(u User) ([]byte, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	accPub, err := k.Account.PublicKey()
	if err != nil {
		return nil, err
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = u.Name()
	uc.IssuerAccount = accPub
	uc.Permissions = u.Permissions()
	if !u.Expires.IsZero() {
		uc.Expires = u.Expires.Unix()
	}
	token, err := uc.Encode(k.Account)
	if err != nil {
		return nil, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	return jwt.FormatUserConfig(token, seed)
}

// ConnectOptions are the options a client of u connects with: its
// credentials and its inbox prefix.
func (k *Keys) ConnectOptions(u User) ([]nats.Option, error) {
	creds, err := k.Creds(u)
	if err != nil {
		return nil, err
	}
	return CredsOptions(creds, u)
}

// CredsOptions connects with a credentials file's content as u.
func CredsOptions(creds []byte, u User) ([]nats.Option, error) {
	token, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return nil, fmt.Errorf("natsauth: credentials: %w", err)
	}
	kp, err := jwt.ParseDecoratedNKey(creds)
	if err != nil {
		return nil, fmt.Errorf("natsauth: credentials: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	return []nats.Option{nats.UserJWTAndSeed(token, string(seed)), nats.CustomInboxPrefix(u.InboxPrefix())}, nil
}
