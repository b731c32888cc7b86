{{ config(materialized='view', schema='staging') }}
-- Every place id Calven can name (a location, level, zone or desk) -> its location (office).
-- Presence events name the place the system saw someone at, at any of these levels.
select location_id as place_id, location_id from {{ ref('stg_locations') }}
union
select level_id, location_id from {{ ref('stg_desks') }} where level_id is not null
union
select zone_id, location_id from {{ ref('stg_desks') }} where zone_id is not null
union
select desk_id, location_id from {{ ref('stg_desks') }}
