-- Indexes for the switch feed's calls beyond the live set: reports over history per charged
-- extension, and "what changed since" over live calls (the API's updatedSince).

CREATE INDEX phone_calls_extension_published ON phone_calls (extension_id, published);
CREATE INDEX phone_calls_live_updated ON phone_calls (updated) WHERE ended IS NULL;
-- Superseded by phone_calls_live_updated for the API; history reports filter on published.
DROP INDEX phone_calls_updated;
