-- Status and flow filters of an organization's page (issue 10). The live views' status and flow
-- indexes held (value, call id): an organization's `filterBy=status` found every organization's
-- live views of that status there and then read each one from the table to keep its own, or
-- walked all of its extensions' live views. Led by the value and then the organization, the same
-- indexes give exactly the organization's matching views and their calls without touching the
-- table; an admin's filter still uses their first column alone. Same number of indexes, each
-- entry eight bytes wider, for the switch feed to maintain.
DROP INDEX phone_call_views_live_status;
CREATE INDEX phone_call_views_live_status ON phone_call_views (status, organization_id, phone_call_id) WHERE call_live;
DROP INDEX phone_call_views_live_flow;
CREATE INDEX phone_call_views_live_flow ON phone_call_views (flow, organization_id, phone_call_id) WHERE call_live;
