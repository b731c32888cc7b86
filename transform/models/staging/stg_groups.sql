select
    {{ calven_id('"groupId"') }} as group_id,
    "groupName" as group_name,
    "groupType" as group_type,
    {{ calven_id('"parentGroupId"') }} as parent_group_id,
    "status" as status
from ({{ latest_row(source('calven', 'groups'), ['"groupId"']) }}) as g
