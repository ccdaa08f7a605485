package tenantdb

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RegisterUUID teaches a connection's type map to send and read
// github.com/google/uuid values as PostgreSQL's binary uuid directly.
//
// pgx knows uuid.UUID only as a driver.Valuer: every uuid parameter was
// formatted as a string, refused by the binary uuid encoder (pgx builds that
// refusal with fmt.Errorf("%#v"), the costliest step), parsed back and only
// then encoded; every uuid column was formatted as a string and parsed by
// uuid.Scan. That was a fifth of the event store's client CPU per append
// (docs/BENCHMARKS.md, "Issue 16: uuid parameters"). The uuid[] array type is
// registered again too, so that its elements use the same codec.
func RegisterUUID(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
}

// RegisterUUIDAfterConnect is RegisterUUID as a pool's AfterConnect hook.
func RegisterUUIDAfterConnect(_ context.Context, conn *pgx.Conn) error {
	RegisterUUID(conn.TypeMap())
	return nil
}

// uuidCodec is pgx's uuid codec with binary plans for uuid.UUID values and
// *uuid.UUID targets; everything else goes to pgtype.UUIDCodec as before.
type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return encodeUUIDBinary{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanUUIDBinary{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

type encodeUUIDBinary struct{}

func (encodeUUIDBinary) Encode(value any, buf []byte) ([]byte, error) {
	u := value.(uuid.UUID)
	return append(buf, u[:]...), nil
}

type scanUUIDBinary struct{}

// Scan reads 16 bytes; NULL reads as uuid.Nil (uuid.Scan left the target as
// it was, which only differs for a target reused across rows).
func (scanUUIDBinary) Scan(src []byte, target any) error {
	dst := target.(*uuid.UUID)
	if src == nil {
		*dst = uuid.Nil
		return nil
	}
	if len(src) != 16 {
		return fmt.Errorf("invalid length for uuid: %d", len(src))
	}
	copy(dst[:], src)
	return nil
}
