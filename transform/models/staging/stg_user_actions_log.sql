select
    {{ calven_id('"actionId"') }} as action_id,
    "timestamp" as acted_at,
    {{ utc_date('"timestamp"') }} as acted_on,
    {{ calven_id('"userId"') }} as user_id,
    {{ utc_date('"day"') }} as day,
    "actionType" as action_type,
    "changedBy" as changed_by,
    {{ calven_id('"changedByUserId"') }} as changed_by_user_id,
    "reason" as reason
from ({{ latest_row(source('calven', 'user_actions_log'), ['"actionId"']) }}) as a
