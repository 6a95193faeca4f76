package projector

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
)

// Dump writes the schema version and every row of every table, tables by
// name and rows in the order of all their columns, one line per row. Two
// projections of the same journal dump identically (the reindex test);
// it is also a debugging aid.
func (d *DB) Dump(ctx context.Context, w io.Writer) error {
	return d.read(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		fmt.Fprintf(w, "user_version %d\n", v)
		rows, err := tx.QueryContext(ctx, `SELECT type, name, COALESCE(sql, '') FROM sqlite_schema
			WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`)
		if err != nil {
			return err
		}
		var tables []string
		for rows.Next() {
			var typ, name, ddl string
			if err := rows.Scan(&typ, &name, &ddl); err != nil {
				rows.Close()
				return err
			}
			fmt.Fprintf(w, "%s %s: %s\n", typ, name, strings.Join(strings.Fields(ddl), " "))
			if typ == "table" {
				tables = append(tables, name)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, t := range tables {
			if err := dumpTable(ctx, tx, w, t); err != nil {
				return fmt.Errorf("dump %s: %w", t, err)
			}
		}
		return nil
	})
}

func dumpTable(ctx context.Context, tx *sql.Tx, w io.Writer, table string) error {
	rows, err := tx.QueryContext(ctx, `SELECT * FROM "`+table+`" LIMIT 0`)
	if err != nil {
		return err
	}
	cols, err := rows.Columns()
	rows.Close()
	if err != nil {
		return err
	}
	order := make([]string, len(cols))
	for i := range cols {
		order[i] = fmt.Sprint(i + 1)
	}
	rows, err = tx.QueryContext(ctx, `SELECT * FROM "`+table+`" ORDER BY `+strings.Join(order, ", "))
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s:", table)
		for i, c := range cols {
			v := vals[i]
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			fmt.Fprintf(w, " %s=%q", c, fmt.Sprint(v))
		}
		fmt.Fprintln(w)
	}
	return rows.Err()
}
