package tenantdb

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// The point of the codec is its plans: uuid.UUID in and out in binary, not
// through driver.Valuer's string and sql.Scanner's parse.
func TestUUIDPlansAreBinary(t *testing.T) {
	m := pgtype.NewMap()
	RegisterUUID(m)
	if p := m.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, uuid.New()); p != (encodeUUIDBinary{}) {
		t.Errorf("encode plan for uuid.UUID is %T, want encodeUUIDBinary", p)
	}
	if p := m.PlanScan(pgtype.UUIDOID, pgtype.BinaryFormatCode, &uuid.UUID{}); p != (scanUUIDBinary{}) {
		t.Errorf("scan plan for *uuid.UUID is %T, want scanUUIDBinary", p)
	}
	buf, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, []uuid.UUID{uuid.New()}, nil)
	if err != nil || len(buf) == 0 {
		t.Errorf("uuid[] of uuid.UUID: %v", err)
	}
	if elem, ok := m.TypeForOID(pgtype.UUIDArrayOID); !ok || elem.Codec.(*pgtype.ArrayCodec).ElementType.Codec != (uuidCodec{}) {
		t.Errorf("uuid[] elements do not use the codec")
	}
}
