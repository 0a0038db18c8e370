-- uapi_date() and uapi_numbers() are called for every index entry of a new call or view (the
-- date and number text indexes) and for every date of every view a page shows. As SQL-language
-- functions they could not be inlined (to_char and array_to_string are only STABLE, these
-- IMMUTABLE), so each call ran through the SQL function executor; as PL/pgSQL functions of one
-- simple expression they cost about half as much. The results are the same to the character,
-- so the indexes built on them stay valid.
CREATE OR REPLACE FUNCTION uapi_date(timestamptz) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ BEGIN RETURN to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'); END $$;

CREATE OR REPLACE FUNCTION uapi_numbers(text[]) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ BEGIN RETURN array_to_string($1, chr(31)); END $$;
