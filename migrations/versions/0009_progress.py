"""progress toward the reserved share: counters kept by triggers on orders

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# docs/progress.md explains the whole design. In short:
# - an order counts while it is paid AND completed; its moment is greatest(paid_at, completed_at)
#   in Asia/Shanghai (year, month);
# - statement-level triggers on `orders` turn every change of "counts or not" (and of what it
#   counts for) into +/- deltas on `progress_counters` (year, unit, channel, month, area class)
#   and `progress_unit_totals` (year, unit), in the transaction of the change, whatever path
#   wrote the order (API, matcher SQL, review, self-service confirmation, fixtures);
# - the priority-area class of an origin is computed in SQL from the reference data
#   (paired_counties via `progress_area_keys`, paired_areas), on normalised names or region codes.

# Ethnic names of autonomous counties/prefectures (自治县/自治州): stripped to get a place's core
# name, so "融水苗族自治县", "融水县" and "融水" are the same county.
_ETHNIC = (
    "仫佬|毛南|瑶|各|苗|水|布依|侗|彝|回|仡佬|土家|壮|京|黎|畲|蒙古|藏|羌|白|哈尼|傣|纳西|傈僳"
    "|拉祜|佤|景颇|维吾尔|哈萨克|柯尔克孜|塔吉克|锡伯|满|朝鲜|达斡尔|鄂温克|鄂伦春|土|蒙"
)

# A change to any of them clears the cache of classified origins (and `paired_counties` rebuilds
# the keys).
REFERENCE_TABLES = ("paired_counties", "paired_areas", "regions")

FUNCTIONS = (
    r"""
    CREATE FUNCTION progress_normalise_place(place text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT regexp_replace(normalize(coalesce(place, ''), NFKC),
                              '[[:space:]·・()\[\]【】,，、\-]', '', 'g')
    $$
    """,
    f"""
    CREATE FUNCTION progress_place_core(place text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT regexp_replace(
                   regexp_replace(progress_normalise_place(place),
                                  '(({_ETHNIC})族)*自治(县|州|区|旗)$', ''),
                   '(特区|地区|省|县|市|区|州|旗|盟)$', '')
    $$
    """,
    # The keys of the paired counties (one row per county core name), rebuilt whenever the
    # reference table changes.
    """
    CREATE FUNCTION progress_rebuild_area_keys() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM progress_origin_classes;
        IF TG_TABLE_NAME <> 'paired_counties' THEN
            RETURN NULL;
        END IF;
        DELETE FROM progress_area_keys;
        INSERT INTO progress_area_keys (core, province_core, prefecture_core, key_county)
        SELECT DISTINCT ON (progress_place_core(county))
               progress_place_core(county), progress_place_core(province),
               progress_place_core(prefecture), national_key_assistance_county
          FROM paired_counties
         WHERE progress_place_core(county) <> ''
         ORDER BY progress_place_core(county), id;
        RETURN NULL;
    END $$
    """,
    *(
        f"""
        CREATE TRIGGER {table}_progress_keys
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION progress_rebuild_area_keys()
        """
        for table in REFERENCE_TABLES
    ),
    # An origin → 'key_county' | 'paired_county' | 'paired_area' | 'none', memoised per origin
    # text in `progress_origin_classes` (cleared whenever the reference data change).
    # A 6-digit region code is replaced by "<parent name><name>" from `regions`. A tail of the
    # normalised text whose core name is a paired county's matches if what precedes it is empty
    # or names the county's province or prefecture ("广东省X市凤山县" does not match Hechi's
    # 凤山县; "广西河池罗城县" matches 罗城仫佬族自治县). Paired areas match when the
    # text contains the area's core name (喀什, 林芝).
    """
    CREATE FUNCTION progress_area_class(origin text) RETURNS text
        LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        found text;
    BEGIN
        SELECT c.area_class INTO found FROM progress_origin_classes c
         WHERE c.origin = coalesce($1, '');
        IF found IS NULL THEN
            found := progress_classify_origin($1);
            INSERT INTO progress_origin_classes (origin, area_class)
            VALUES (coalesce($1, ''), found) ON CONFLICT DO NOTHING;
        END IF;
        RETURN found;
    END $$
    """,
    """
    CREATE FUNCTION progress_classify_origin(origin text) RETURNS text
        LANGUAGE plpgsql STABLE AS $$
    DECLARE
        s text := progress_normalise_place(origin);
        found text;
    BEGIN
        IF s = '' THEN
            RETURN 'none';
        END IF;
        IF s ~ '^[0-9]{6}$' THEN
            SELECT coalesce(p.name, '') || r.name INTO found
              FROM regions r LEFT JOIN regions p ON p.code = r.parent_code
             WHERE r.code = s;
            IF found IS NOT NULL THEN
                s := progress_normalise_place(found);
            END IF;
        END IF;
        SELECT CASE WHEN k.key_county THEN 'key_county' ELSE 'paired_county' END INTO found
          FROM generate_series(1, length(s)) AS i
          JOIN progress_area_keys k ON k.core = progress_place_core(substr(s, i))
         WHERE (i = 1 OR strpos(left(s, i - 1), k.province_core) > 0
                      OR strpos(left(s, i - 1), k.prefecture_core) > 0)
         ORDER BY i
         LIMIT 1;
        IF found IS NOT NULL THEN
            RETURN found;
        END IF;
        IF EXISTS (SELECT FROM paired_areas a
                    WHERE progress_place_core(a.area) <> ''
                      AND strpos(s, progress_place_core(a.area)) > 0) THEN
            RETURN 'paired_area';
        END IF;
        RETURN 'none';
    END $$
    """,
)

# What an order counts for, as a signed row: + for the new version of a counted order, - for the
# old one. An update that changes nothing relevant cancels out (HAVING).
_COUNTED = "status = 'paid' AND completed_at IS NOT NULL"
_TZ = "Asia/Shanghai"


def _signed(table: str, sign: str) -> str:
    return f"""
        SELECT CAST(extract(year FROM greatest(paid_at, completed_at) AT TIME ZONE '{_TZ}')
                    AS smallint) AS year,
               buyer_unit_id AS unit_id, purchase_channel AS channel,
               CAST(extract(month FROM greatest(paid_at, completed_at) AT TIME ZONE '{_TZ}')
                    AS smallint) AS month,
               coalesce(origin_county, '') AS origin, {sign}amount AS amount, {sign}1 AS orders
          FROM {table} WHERE {_COUNTED}"""


def _apply_sql(signed: str) -> str:
    """One statement: the deltas, classified (once per distinct origin), added to both tables in
    key order (concurrent transactions lock counter rows in the same order)."""
    return f"""
        WITH d AS ({signed}
        ), classes AS MATERIALIZED (  -- once per distinct origin, not per row
            SELECT origin, progress_area_class(origin) AS area_class
              FROM (SELECT DISTINCT origin FROM d) o
        ), g AS (
            SELECT d.year, d.unit_id, d.channel, d.month, c.area_class,
                   sum(d.amount) AS amount, sum(d.orders) AS orders
              FROM d JOIN classes c ON c.origin = d.origin
             GROUP BY 1, 2, 3, 4, 5
            HAVING sum(d.amount) <> 0 OR sum(d.orders) <> 0
        ), counters AS (
            INSERT INTO progress_counters AS pc
                   (year, unit_id, channel, month, area_class, amount, orders)
            SELECT * FROM g ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (year, unit_id, channel, month, area_class) DO UPDATE
               SET amount = pc.amount + excluded.amount, orders = pc.orders + excluded.orders
        )
        INSERT INTO progress_unit_totals AS t
               (year, unit_id, unit_amount, contractor_amount, personal_amount, union_amount,
                paired_amount, key_amount, other_area_amount, orders)
        SELECT year, unit_id,
               coalesce(sum(amount) FILTER (WHERE channel = 'unit'), 0),
               coalesce(sum(amount) FILTER (WHERE channel = 'contractor'), 0),
               coalesce(sum(amount) FILTER (WHERE channel = 'personal'), 0),
               coalesce(sum(amount) FILTER (WHERE channel = 'union'), 0),
               coalesce(sum(amount) FILTER (WHERE area_class IN ('paired_county', 'key_county')),
                        0),
               coalesce(sum(amount) FILTER (WHERE area_class = 'key_county'), 0),
               coalesce(sum(amount) FILTER (WHERE area_class = 'paired_area'), 0),
               sum(orders)
          FROM g GROUP BY year, unit_id ORDER BY year, unit_id
        ON CONFLICT (year, unit_id) DO UPDATE
           SET unit_amount = t.unit_amount + excluded.unit_amount,
               contractor_amount = t.contractor_amount + excluded.contractor_amount,
               personal_amount = t.personal_amount + excluded.personal_amount,
               union_amount = t.union_amount + excluded.union_amount,
               paired_amount = t.paired_amount + excluded.paired_amount,
               key_amount = t.key_amount + excluded.key_amount,
               other_area_amount = t.other_area_amount + excluded.other_area_amount,
               orders = t.orders + excluded.orders;
    """


ORDER_TRIGGERS = (
    f"""
    CREATE FUNCTION progress_orders_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT FROM new_orders WHERE {_COUNTED}) THEN
            RETURN NULL;
        END IF;
        {_apply_sql(_signed("new_orders", ""))}
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION progress_orders_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT FROM new_orders WHERE {_COUNTED})
           AND NOT EXISTS (SELECT FROM old_orders WHERE {_COUNTED}) THEN
            RETURN NULL;  -- the usual case (a payment of an uncompleted order): no cost
        END IF;
        {_apply_sql(_signed("new_orders", "") + " UNION ALL " + _signed("old_orders", "-"))}
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER orders_progress_insert AFTER INSERT ON orders
        REFERENCING NEW TABLE AS new_orders
        FOR EACH STATEMENT EXECUTE FUNCTION progress_orders_insert()
    """,
    """
    CREATE TRIGGER orders_progress_update AFTER UPDATE ON orders
        REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
        FOR EACH STATEMENT EXECUTE FUNCTION progress_orders_update()
    """,
    # The targets: the reserved share and union expected amount of the unit's latest submitted
    # version of its filing of the year (a submission inserts a version).
    """
    CREATE FUNCTION progress_filing_versions_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO progress_unit_totals AS t (year, unit_id, reserved_amount,
                                               union_expected_amount)
        SELECT DISTINCT ON (f.year, f.unit_id) f.year, f.unit_id,
               CAST(nullif(v.snapshot ->> 'reserved_amount', '') AS numeric(16, 2)),
               CAST(nullif(v.snapshot ->> 'union_expected_amount', '') AS numeric(16, 2))
          FROM new_versions v JOIN filings f ON f.id = v.filing_id
         ORDER BY f.year, f.unit_id, v.version_no DESC
        ON CONFLICT (year, unit_id) DO UPDATE
           SET reserved_amount = excluded.reserved_amount,
               union_expected_amount = excluded.union_expected_amount;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER filing_versions_progress AFTER INSERT ON filing_versions
        REFERENCING NEW TABLE AS new_versions
        FOR EACH STATEMENT EXECUTE FUNCTION progress_filing_versions_insert()
    """,
)


# Per (year, finance department, department, region): the sums of the per-unit totals, so that a
# province's dashboard (groups and totals) reads a few hundred rows, not every unit. Kept from
# the changes of `progress_unit_totals` (statement triggers, same transaction); a unit moved to
# another department, region or finance department rebuilds them (org changes are rare).
_GROUP_AMOUNTS = (
    "reserved_amount", "union_expected_amount", "unit_amount", "contractor_amount",
    "personal_amount", "union_amount", "paired_amount", "key_amount", "other_area_amount",
)  # fmt: skip
_GROUP_KEY = (
    "coalesce(u.finance_department_id, 0) AS finance_department_id, "
    "CAST(coalesce(nullif(split_part(u.path, '/', 2), ''), '0') AS bigint) AS department_id, "
    "u.region_code"
)


def _group_delta_sql(signed: str) -> str:
    sums = ", ".join(f"sum({c})" for c in ("units", "orders", *_GROUP_AMOUNTS))
    sets = ", ".join(
        f"{c} = g.{c} + excluded.{c}" for c in ("units_count", "orders", *_GROUP_AMOUNTS)
    )
    return f"""
        INSERT INTO progress_group_totals AS g
               (year, finance_department_id, department_id, region_code, units_count, orders,
                {", ".join(_GROUP_AMOUNTS)})
        SELECT d.year, {_GROUP_KEY}, {sums}
          FROM ({signed}) d JOIN org_units u ON u.id = d.unit_id
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (year, finance_department_id, department_id, region_code) DO UPDATE
           SET {sets};
    """


def _unit_rows(table: str, sign: str, units: str) -> str:
    amounts = ", ".join(f"{sign}coalesce({c}, 0) AS {c}" for c in _GROUP_AMOUNTS)
    return f"SELECT year, unit_id, {units} AS units, {sign}orders AS orders, {amounts} FROM {table}"


GROUP_REBUILD = f"""
    DELETE FROM progress_group_totals;
    INSERT INTO progress_group_totals
           (year, finance_department_id, department_id, region_code, units_count, orders,
            {", ".join(_GROUP_AMOUNTS)})
    SELECT t.year, {_GROUP_KEY}, count(*), sum(t.orders),
           {", ".join(f"coalesce(sum(t.{c}), 0)" for c in _GROUP_AMOUNTS)}
      FROM progress_unit_totals t JOIN org_units u ON u.id = t.unit_id
     GROUP BY 1, 2, 3, 4;
"""

GROUP_TRIGGERS = (
    f"""
    CREATE FUNCTION progress_unit_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_group_delta_sql(_unit_rows("new_totals", "", "1"))}
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION progress_unit_totals_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {
        _group_delta_sql(
            _unit_rows("new_totals", "", "0") + " UNION ALL " + _unit_rows("old_totals", "-", "0")
        )
    }
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER progress_unit_totals_insert AFTER INSERT ON progress_unit_totals
        REFERENCING NEW TABLE AS new_totals
        FOR EACH STATEMENT EXECUTE FUNCTION progress_unit_totals_insert()
    """,
    """
    CREATE TRIGGER progress_unit_totals_update AFTER UPDATE ON progress_unit_totals
        REFERENCING OLD TABLE AS old_totals NEW TABLE AS new_totals
        FOR EACH STATEMENT EXECUTE FUNCTION progress_unit_totals_update()
    """,
    f"""
    CREATE FUNCTION progress_org_units_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT FROM old_units o JOIN new_units n ON n.id = o.id
                    WHERE n.path IS DISTINCT FROM o.path
                       OR n.region_code IS DISTINCT FROM o.region_code
                       OR n.finance_department_id IS DISTINCT FROM o.finance_department_id) THEN
            {GROUP_REBUILD}
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER org_units_progress AFTER UPDATE ON org_units
        REFERENCING OLD TABLE AS old_units NEW TABLE AS new_units
        FOR EACH STATEMENT EXECUTE FUNCTION progress_org_units_update()
    """,
)

_CANTEEN = "unit_amount + contractor_amount + personal_amount"


def _amount(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(16, 2), server_default="0", nullable=False)


def upgrade() -> None:
    op.create_table(
        "progress_counters",
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=18), nullable=False),
        sa.Column("month", sa.SmallInteger(), nullable=False),
        sa.Column("area_class", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(16, 2), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "year", "unit_id", "channel", "month", "area_class", name=op.f("pk_progress_counters")
        ),
    )
    op.create_table(
        "progress_unit_totals",
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("reserved_amount", sa.Numeric(16, 2), nullable=True),
        sa.Column("union_expected_amount", sa.Numeric(16, 2), nullable=True),
        _amount("unit_amount"),
        _amount("contractor_amount"),
        _amount("personal_amount"),
        _amount("union_amount"),
        _amount("paired_amount"),
        _amount("key_amount"),
        _amount("other_area_amount"),
        sa.Column("orders", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "canteen_amount",
            sa.Numeric(16, 2),
            sa.Computed(_CANTEEN, persisted=True),
            nullable=False,
        ),
        sa.Column(
            "completion_pct",
            sa.Numeric(12, 2),
            sa.Computed(
                f"CASE WHEN reserved_amount > 0 THEN "
                f"round(({_CANTEEN}) * 100 / reserved_amount, 2) END",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("year", "unit_id", name=op.f("pk_progress_unit_totals")),
    )
    op.create_index(
        "ix_progress_unit_totals_year_completion",
        "progress_unit_totals",
        ["year", "completion_pct", "unit_id"],
        unique=False,
    )
    op.create_table(
        "progress_area_keys",
        sa.Column("core", sa.String(length=50), nullable=False),
        sa.Column("province_core", sa.String(length=50), nullable=False),
        sa.Column("prefecture_core", sa.String(length=50), nullable=False),
        sa.Column("key_county", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("core", name=op.f("pk_progress_area_keys")),
    )
    op.create_table(
        "progress_origin_classes",
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("area_class", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_progress_origin_classes")),
    )
    op.create_table(
        "progress_group_totals",
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("finance_department_id", sa.BigInteger(), nullable=False),
        sa.Column("department_id", sa.BigInteger(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("units_count", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        *(sa.Column(c, sa.Numeric(16, 2), nullable=False) for c in _GROUP_AMOUNTS),
        sa.PrimaryKeyConstraint(
            "year",
            "finance_department_id",
            "department_id",
            "region_code",
            name=op.f("pk_progress_group_totals"),
        ),
    )
    for statement in (*FUNCTIONS, *ORDER_TRIGGERS, *GROUP_TRIGGERS):
        op.execute(statement)
    # reference rows loaded before this migration (orders already counted: `python -m
    # services.confirmation.progress rebuild`)
    op.execute(
        """
        INSERT INTO progress_area_keys (core, province_core, prefecture_core, key_county)
        SELECT DISTINCT ON (progress_place_core(county))
               progress_place_core(county), progress_place_core(province),
               progress_place_core(prefecture), national_key_assistance_county
          FROM paired_counties WHERE progress_place_core(county) <> ''
         ORDER BY progress_place_core(county), id
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER org_units_progress ON org_units")
    op.execute("DROP TRIGGER progress_unit_totals_update ON progress_unit_totals")
    op.execute("DROP TRIGGER progress_unit_totals_insert ON progress_unit_totals")
    for function in ("org_units_update", "unit_totals_update", "unit_totals_insert"):
        op.execute(f"DROP FUNCTION progress_{function}()")
    op.drop_table("progress_group_totals")
    op.execute("DROP TRIGGER filing_versions_progress ON filing_versions")
    op.execute("DROP TRIGGER orders_progress_update ON orders")
    op.execute("DROP TRIGGER orders_progress_insert ON orders")
    for table in REFERENCE_TABLES:
        op.execute(f"DROP TRIGGER {table}_progress_keys ON {table}")
    for function in (
        "progress_filing_versions_insert()",
        "progress_orders_update()",
        "progress_orders_insert()",
        "progress_area_class(text)",
        "progress_classify_origin(text)",
        "progress_rebuild_area_keys()",
        "progress_place_core(text)",
        "progress_normalise_place(text)",
    ):
        op.execute(f"DROP FUNCTION {function}")
    op.drop_table("progress_origin_classes")
    op.drop_table("progress_area_keys")
    op.drop_index("ix_progress_unit_totals_year_completion", table_name="progress_unit_totals")
    op.drop_table("progress_unit_totals")
    op.drop_table("progress_counters")
