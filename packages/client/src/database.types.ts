export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[]

export type Database = {
  
  "public": {
          Tables: {
            "agent_keys": {
                  Row: {
                    "agent_id": string,"created_at": string,"created_by": string | null,"expires_at": string | null,"id": string,"key_hash": string,"key_prefix": string,"last_used_at": string | null,"name": string | null,"revoked_at": string | null,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "agent_id": string,"created_at"?: string,"created_by"?: string | null,"expires_at"?: string | null,"id"?: string,"key_hash": string,"key_prefix": string,"last_used_at"?: string | null,"name"?: string | null,"revoked_at"?: string | null,"workspace_id": string
                  }
                  Update: {
                    "agent_id"?: string,"created_at"?: string,"created_by"?: string | null,"expires_at"?: string | null,"id"?: string,"key_hash"?: string,"key_prefix"?: string,"last_used_at"?: string | null,"name"?: string | null,"revoked_at"?: string | null,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "agent_keys_agent_id_workspace_id_fkey"
      columns: ["agent_id","workspace_id"]
isOneToOne: false
      referencedRelation: "agents"
      referencedColumns: ["id","workspace_id"]
    }
                  ]
                },"agent_permissions": {
                  Row: {
                    "agent_id": string,"allowed_recipients": (string)[],"allowed_scopes": (string)[],"blocked_recipients": (string)[],"connection_id": string,"created_at": string,"daily_send_limit": number | null,"expires_at": string | null,"granted_at": string,"granted_by": string | null,"id": string,"is_active": boolean,"max_recipients_per_message": number,"monthly_send_limit": number | null,"revoked_at": string | null,"updated_at": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "agent_id": string,"allowed_recipients"?: (string)[],"allowed_scopes": (string)[],"blocked_recipients"?: (string)[],"connection_id": string,"created_at"?: string,"daily_send_limit"?: number | null,"expires_at"?: string | null,"granted_at"?: string,"granted_by"?: string | null,"id"?: string,"is_active"?: boolean,"max_recipients_per_message"?: number,"monthly_send_limit"?: number | null,"revoked_at"?: string | null,"updated_at"?: string,"workspace_id": string
                  }
                  Update: {
                    "agent_id"?: string,"allowed_recipients"?: (string)[],"allowed_scopes"?: (string)[],"blocked_recipients"?: (string)[],"connection_id"?: string,"created_at"?: string,"daily_send_limit"?: number | null,"expires_at"?: string | null,"granted_at"?: string,"granted_by"?: string | null,"id"?: string,"is_active"?: boolean,"max_recipients_per_message"?: number,"monthly_send_limit"?: number | null,"revoked_at"?: string | null,"updated_at"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "agent_permissions_agent_id_workspace_id_fkey"
      columns: ["agent_id","workspace_id"]
isOneToOne: false
      referencedRelation: "agents"
      referencedColumns: ["id","workspace_id"]
    },{
      foreignKeyName: "agent_permissions_connection_id_workspace_id_fkey"
      columns: ["connection_id","workspace_id"]
isOneToOne: false
      referencedRelation: "connections"
      referencedColumns: ["id","workspace_id"]
    }
                  ]
                },"agents": {
                  Row: {
                    "created_at": string,"description": string | null,"disabled_by": string | null,"id": string,"is_active": boolean,"name": string,"updated_at": string,"user_id": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"description"?: string | null,"disabled_by"?: string | null,"id"?: string,"is_active"?: boolean,"name": string,"updated_at"?: string,"user_id"?: string,"workspace_id"?: string
                  }
                  Update: {
                    "created_at"?: string,"description"?: string | null,"disabled_by"?: string | null,"id"?: string,"is_active"?: boolean,"name"?: string,"updated_at"?: string,"user_id"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "agents_workspace_id_fkey"
      columns: ["workspace_id"]
isOneToOne: false
      referencedRelation: "workspaces"
      referencedColumns: ["id"]
    }
                  ]
                },"audit_events": {
                  Row: {
                    "action": string,"actor_role": string,"actor_user_id": string | null,"created_at": string,"details": NonNullable<Json>,"id": number,"ip": unknown,"target_id": string | null,"target_type": string,"user_agent": string | null,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "action": string,"actor_role": string,"actor_user_id"?: string | null,"created_at"?: string,"details"?: NonNullable<Json>,"id"?: never,"ip"?: unknown,"target_id"?: string | null,"target_type": string,"user_agent"?: string | null,"workspace_id": string
                  }
                  Update: {
                    "action"?: string,"actor_role"?: string,"actor_user_id"?: string | null,"created_at"?: string,"details"?: NonNullable<Json>,"id"?: never,"ip"?: unknown,"target_id"?: string | null,"target_type"?: string,"user_agent"?: string | null,"workspace_id"?: string
                  }
                  Relationships: [
                    
                  ]
                },"connection_webhooks": {
                  Row: {
                    "connection_id": string,"created_at": string,"webhook_token": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "connection_id": string,"created_at"?: string,"webhook_token"?: string,"workspace_id": string
                  }
                  Update: {
                    "connection_id"?: string,"created_at"?: string,"webhook_token"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "connection_webhooks_connection_id_workspace_id_fkey"
      columns: ["connection_id","workspace_id"]
isOneToOne: false
      referencedRelation: "connections"
      referencedColumns: ["id","workspace_id"]
    }
                  ]
                },"connections": {
                  Row: {
                    "config": NonNullable<Json>,"created_at": string,"created_by": string | null,"credentials_rotated_at": string | null,"deleted_at": string | null,"granted_scopes": (string)[],"id": string,"is_default_mail": boolean,"last_test_message": string | null,"last_test_ok": boolean | null,"last_tested_at": string | null,"name": string,"provider_id": string,"secret_id": string | null,"status": string,"updated_at": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "config"?: NonNullable<Json>,"created_at"?: string,"created_by"?: string | null,"credentials_rotated_at"?: string | null,"deleted_at"?: string | null,"granted_scopes"?: (string)[],"id"?: string,"is_default_mail"?: boolean,"last_test_message"?: string | null,"last_test_ok"?: boolean | null,"last_tested_at"?: string | null,"name": string,"provider_id": string,"secret_id"?: string | null,"status"?: string,"updated_at"?: string,"workspace_id": string
                  }
                  Update: {
                    "config"?: NonNullable<Json>,"created_at"?: string,"created_by"?: string | null,"credentials_rotated_at"?: string | null,"deleted_at"?: string | null,"granted_scopes"?: (string)[],"id"?: string,"is_default_mail"?: boolean,"last_test_message"?: string | null,"last_test_ok"?: boolean | null,"last_tested_at"?: string | null,"name"?: string,"provider_id"?: string,"secret_id"?: string | null,"status"?: string,"updated_at"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "connections_provider_id_fkey"
      columns: ["provider_id"]
isOneToOne: false
      referencedRelation: "service_providers"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "connections_workspace_id_fkey"
      columns: ["workspace_id"]
isOneToOne: false
      referencedRelation: "workspaces"
      referencedColumns: ["id"]
    }
                  ]
                },"integration_capabilities": {
                  Row: {
                    "capability_key": string,"channel": string | null,"created_at": string,"description": string,"display_label": string,"display_order": number,"id": string,"input_schema": NonNullable<Json>,"input_schema_json": Json | null,"is_destructive": boolean,"is_read_only": boolean,"output_schema": NonNullable<Json>,"output_schema_json": NonNullable<Json>,"provider_id": string | null,"required_scope": string,"sends_messages": boolean,"strict_input_schema": NonNullable<Json>,"strict_input_schema_json": Json | null,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "capability_key": string,"channel"?: string | null,"created_at"?: string,"description": string,"display_label": string,"display_order"?: number,"id"?: string,"input_schema"?: NonNullable<Json>,"input_schema_json"?: never,"is_destructive"?: boolean,"is_read_only"?: boolean,"output_schema"?: NonNullable<Json>,"output_schema_json"?: never,"provider_id"?: string | null,"required_scope": string,"sends_messages"?: boolean,"strict_input_schema"?: NonNullable<Json>,"strict_input_schema_json"?: never,"updated_at"?: string
                  }
                  Update: {
                    "capability_key"?: string,"channel"?: string | null,"created_at"?: string,"description"?: string,"display_label"?: string,"display_order"?: number,"id"?: string,"input_schema"?: NonNullable<Json>,"input_schema_json"?: never,"is_destructive"?: boolean,"is_read_only"?: boolean,"output_schema"?: NonNullable<Json>,"output_schema_json"?: never,"provider_id"?: string | null,"required_scope"?: string,"sends_messages"?: boolean,"strict_input_schema"?: NonNullable<Json>,"strict_input_schema_json"?: never,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "integration_capabilities_provider_id_fkey"
      columns: ["provider_id"]
isOneToOne: false
      referencedRelation: "service_providers"
      referencedColumns: ["id"]
    }
                  ]
                },"member_default_numbers": {
                  Row: {
                    "connection_id": string,"phone_number_id": string,"user_id": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "connection_id": string,"phone_number_id": string,"user_id": string,"workspace_id": string
                  }
                  Update: {
                    "connection_id"?: string,"phone_number_id"?: string,"user_id"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "member_default_numbers_connection_id_workspace_id_fkey"
      columns: ["connection_id","workspace_id"]
isOneToOne: false
      referencedRelation: "connections"
      referencedColumns: ["id","workspace_id"]
    },{
      foreignKeyName: "member_default_numbers_phone_number_id_connection_id_fkey"
      columns: ["phone_number_id","connection_id"]
isOneToOne: false
      referencedRelation: "phone_numbers"
      referencedColumns: ["id","connection_id"]
    },{
      foreignKeyName: "member_default_numbers_workspace_id_user_id_fkey"
      columns: ["workspace_id","user_id"]
isOneToOne: false
      referencedRelation: "workspace_members"
      referencedColumns: ["workspace_id","user_id"]
    }
                  ]
                },"member_permissions": {
                  Row: {
                    "allowed_recipients": (string)[],"blocked_recipients": (string)[],"can_configure": boolean,"can_send": boolean,"can_view": boolean,"connection_id": string,"daily_send_limit": number | null,"expires_at": string | null,"granted_at": string,"granted_by": string | null,"id": string,"monthly_send_limit": number | null,"scopes": (string)[],"updated_at": string,"user_id": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "allowed_recipients"?: (string)[],"blocked_recipients"?: (string)[],"can_configure"?: boolean,"can_send"?: boolean,"can_view"?: boolean,"connection_id": string,"daily_send_limit"?: number | null,"expires_at"?: string | null,"granted_at"?: string,"granted_by"?: string | null,"id"?: string,"monthly_send_limit"?: number | null,"scopes"?: (string)[],"updated_at"?: string,"user_id": string,"workspace_id": string
                  }
                  Update: {
                    "allowed_recipients"?: (string)[],"blocked_recipients"?: (string)[],"can_configure"?: boolean,"can_send"?: boolean,"can_view"?: boolean,"connection_id"?: string,"daily_send_limit"?: number | null,"expires_at"?: string | null,"granted_at"?: string,"granted_by"?: string | null,"id"?: string,"monthly_send_limit"?: number | null,"scopes"?: (string)[],"updated_at"?: string,"user_id"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "member_permissions_connection_id_workspace_id_fkey"
      columns: ["connection_id","workspace_id"]
isOneToOne: false
      referencedRelation: "connections"
      referencedColumns: ["id","workspace_id"]
    },{
      foreignKeyName: "member_permissions_workspace_id_user_id_fkey"
      columns: ["workspace_id","user_id"]
isOneToOne: false
      referencedRelation: "workspace_members"
      referencedColumns: ["workspace_id","user_id"]
    }
                  ]
                },"message_events": {
                  Row: {
                    "channel": string | null,"connection_id": string,"delivery_status": string | null,"event_type": string,"id": string,"occurred_at": string | null,"operation_id": string | null,"our_number": string | null,"payload": NonNullable<Json>,"provider_event_id": string,"provider_message_id": string | null,"received_at": string,"recipient": string | null,"status": string | null,"user_id": string | null,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "channel"?: string | null,"connection_id": string,"delivery_status"?: string | null,"event_type": string,"id"?: string,"occurred_at"?: string | null,"operation_id"?: string | null,"our_number"?: string | null,"payload"?: NonNullable<Json>,"provider_event_id": string,"provider_message_id"?: string | null,"received_at"?: string,"recipient"?: string | null,"status"?: string | null,"user_id"?: string | null,"workspace_id": string
                  }
                  Update: {
                    "channel"?: string | null,"connection_id"?: string,"delivery_status"?: string | null,"event_type"?: string,"id"?: string,"occurred_at"?: string | null,"operation_id"?: string | null,"our_number"?: string | null,"payload"?: NonNullable<Json>,"provider_event_id"?: string,"provider_message_id"?: string | null,"received_at"?: string,"recipient"?: string | null,"status"?: string | null,"user_id"?: string | null,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "message_events_connection_id_fkey"
      columns: ["connection_id"]
isOneToOne: false
      referencedRelation: "connections"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "message_events_operation_id_fkey"
      columns: ["operation_id"]
isOneToOne: false
      referencedRelation: "operations"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "message_events_workspace_id_fkey"
      columns: ["workspace_id"]
isOneToOne: false
      referencedRelation: "workspaces"
      referencedColumns: ["id"]
    }
                  ]
                },"operation_attempts": {
                  Row: {
                    "attempt": number,"connection_id": string | null,"created_at": string,"duration_ms": number | null,"error_code": string | null,"error_message": string | null,"id": number,"operation_id": string,"outcome": string,"provider": string,"provider_code": string | null,"provider_status": number | null,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "attempt": number,"connection_id"?: string | null,"created_at"?: string,"duration_ms"?: number | null,"error_code"?: string | null,"error_message"?: string | null,"id"?: never,"operation_id": string,"outcome": string,"provider": string,"provider_code"?: string | null,"provider_status"?: number | null,"workspace_id": string
                  }
                  Update: {
                    "attempt"?: number,"connection_id"?: string | null,"created_at"?: string,"duration_ms"?: number | null,"error_code"?: string | null,"error_message"?: string | null,"id"?: never,"operation_id"?: string,"outcome"?: string,"provider"?: string,"provider_code"?: string | null,"provider_status"?: number | null,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "operation_attempts_operation_id_fkey"
      columns: ["operation_id"]
isOneToOne: false
      referencedRelation: "operations"
      referencedColumns: ["id"]
    }
                  ]
                },"operations": {
                  Row: {
                    "agent_id": string | null,"auth_mode": string,"capability_key": string,"connection_id": string | null,"created_at": string,"duration_ms": number | null,"error_code": string | null,"error_details": Json | null,"error_message": string | null,"finished_at": string | null,"id": string,"idempotency_key": string | null,"member_permission_id": string | null,"permission_id": string | null,"provider_message_ids": (string)[],"quota_date": string | null,"quota_reserved": number,"quota_used": number,"recipient_count": number,"recipients": (string)[],"request_hash": string | null,"request_summary": NonNullable<Json>,"response": Json | null,"sender": string | null,"status": string,"user_id": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "agent_id"?: string | null,"auth_mode": string,"capability_key": string,"connection_id"?: string | null,"created_at"?: string,"duration_ms"?: number | null,"error_code"?: string | null,"error_details"?: Json | null,"error_message"?: string | null,"finished_at"?: string | null,"id"?: string,"idempotency_key"?: string | null,"member_permission_id"?: string | null,"permission_id"?: string | null,"provider_message_ids"?: (string)[],"quota_date"?: string | null,"quota_reserved"?: number,"quota_used"?: number,"recipient_count"?: number,"recipients"?: (string)[],"request_hash"?: string | null,"request_summary"?: NonNullable<Json>,"response"?: Json | null,"sender"?: string | null,"status": string,"user_id": string,"workspace_id": string
                  }
                  Update: {
                    "agent_id"?: string | null,"auth_mode"?: string,"capability_key"?: string,"connection_id"?: string | null,"created_at"?: string,"duration_ms"?: number | null,"error_code"?: string | null,"error_details"?: Json | null,"error_message"?: string | null,"finished_at"?: string | null,"id"?: string,"idempotency_key"?: string | null,"member_permission_id"?: string | null,"permission_id"?: string | null,"provider_message_ids"?: (string)[],"quota_date"?: string | null,"quota_reserved"?: number,"quota_used"?: number,"recipient_count"?: number,"recipients"?: (string)[],"request_hash"?: string | null,"request_summary"?: NonNullable<Json>,"response"?: Json | null,"sender"?: string | null,"status"?: string,"user_id"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "operations_workspace_id_fkey"
      columns: ["workspace_id"]
isOneToOne: false
      referencedRelation: "workspaces"
      referencedColumns: ["id"]
    }
                  ]
                },"phone_numbers": {
                  Row: {
                    "assigned_to": string | null,"capabilities": (string)[],"connection_id": string,"created_at": string,"e164": string,"friendly_name": string | null,"id": string,"is_default": boolean,"status": string,"updated_at": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "assigned_to"?: string | null,"capabilities"?: (string)[],"connection_id": string,"created_at"?: string,"e164": string,"friendly_name"?: string | null,"id"?: string,"is_default"?: boolean,"status"?: string,"updated_at"?: string,"workspace_id": string
                  }
                  Update: {
                    "assigned_to"?: string | null,"capabilities"?: (string)[],"connection_id"?: string,"created_at"?: string,"e164"?: string,"friendly_name"?: string | null,"id"?: string,"is_default"?: boolean,"status"?: string,"updated_at"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "phone_numbers_connection_id_workspace_id_fkey"
      columns: ["connection_id","workspace_id"]
isOneToOne: false
      referencedRelation: "connections"
      referencedColumns: ["id","workspace_id"]
    }
                  ]
                },"route_connections": {
                  Row: {
                    "connection_id": string,"position": number,"route_id": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "connection_id": string,"position": number,"route_id": string,"workspace_id": string
                  }
                  Update: {
                    "connection_id"?: string,"position"?: number,"route_id"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "route_connections_connection_id_workspace_id_fkey"
      columns: ["connection_id","workspace_id"]
isOneToOne: false
      referencedRelation: "connections"
      referencedColumns: ["id","workspace_id"]
    },{
      foreignKeyName: "route_connections_route_id_workspace_id_fkey"
      columns: ["route_id","workspace_id"]
isOneToOne: false
      referencedRelation: "routes"
      referencedColumns: ["id","workspace_id"]
    }
                  ]
                },"routes": {
                  Row: {
                    "channel": string,"created_at": string,"created_by": string | null,"id": string,"updated_at": string,"user_id": string | null,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "channel": string,"created_at"?: string,"created_by"?: string | null,"id"?: string,"updated_at"?: string,"user_id"?: string | null,"workspace_id": string
                  }
                  Update: {
                    "channel"?: string,"created_at"?: string,"created_by"?: string | null,"id"?: string,"updated_at"?: string,"user_id"?: string | null,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "routes_workspace_id_fkey"
      columns: ["workspace_id"]
isOneToOne: false
      referencedRelation: "workspaces"
      referencedColumns: ["id"]
    }
                  ]
                },"sender_identities": {
                  Row: {
                    "connection_id": string,"created_at": string,"email": string,"id": string,"is_default": boolean,"name": string | null,"updated_at": string,"verified": boolean,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "connection_id": string,"created_at"?: string,"email": string,"id"?: string,"is_default"?: boolean,"name"?: string | null,"updated_at"?: string,"verified"?: boolean,"workspace_id": string
                  }
                  Update: {
                    "connection_id"?: string,"created_at"?: string,"email"?: string,"id"?: string,"is_default"?: boolean,"name"?: string | null,"updated_at"?: string,"verified"?: boolean,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "sender_identities_connection_id_workspace_id_fkey"
      columns: ["connection_id","workspace_id"]
isOneToOne: false
      referencedRelation: "connections"
      referencedColumns: ["id","workspace_id"]
    }
                  ]
                },"service_providers": {
                  Row: {
                    "auth_type": string,"channels": (string)[],"config_schema": NonNullable<Json>,"configuration_metadata": NonNullable<Json>,"created_at": string,"credential_fields": (string)[],"display_name": string,"function_name": string | null,"id": string,"is_enabled": boolean,"name": string,"required_config_fields": (string)[],"scopes_supported": (string)[],"status_callback_kind": string | null,"updated_at": string,"webhook_kinds": (string)[]
                  }
                  ComputedFields: never
                  Insert: {
                    "auth_type": string,"channels"?: (string)[],"config_schema"?: NonNullable<Json>,"configuration_metadata"?: NonNullable<Json>,"created_at"?: string,"credential_fields"?: (string)[],"display_name": string,"function_name"?: string | null,"id"?: string,"is_enabled"?: boolean,"name": string,"required_config_fields"?: (string)[],"scopes_supported"?: (string)[],"status_callback_kind"?: string | null,"updated_at"?: string,"webhook_kinds"?: (string)[]
                  }
                  Update: {
                    "auth_type"?: string,"channels"?: (string)[],"config_schema"?: NonNullable<Json>,"configuration_metadata"?: NonNullable<Json>,"created_at"?: string,"credential_fields"?: (string)[],"display_name"?: string,"function_name"?: string | null,"id"?: string,"is_enabled"?: boolean,"name"?: string,"required_config_fields"?: (string)[],"scopes_supported"?: (string)[],"status_callback_kind"?: string | null,"updated_at"?: string,"webhook_kinds"?: (string)[]
                  }
                  Relationships: [
                    
                  ]
                },"usage_counters": {
                  Row: {
                    "period": string,"period_start": string,"subject": string,"subject_id": string,"used": number,"user_id": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "period": string,"period_start": string,"subject": string,"subject_id": string,"used"?: number,"user_id": string,"workspace_id": string
                  }
                  Update: {
                    "period"?: string,"period_start"?: string,"subject"?: string,"subject_id"?: string,"used"?: number,"user_id"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "usage_counters_workspace_id_fkey"
      columns: ["workspace_id"]
isOneToOne: false
      referencedRelation: "workspaces"
      referencedColumns: ["id"]
    }
                  ]
                },"workspace_invitations": {
                  Row: {
                    "created_at": string,"email": string,"expires_at": string,"id": string,"invited_by": string | null,"responded_at": string | null,"role": string,"status": string,"token_hash": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"email": string,"expires_at": string,"id"?: string,"invited_by"?: string | null,"responded_at"?: string | null,"role": string,"status"?: string,"token_hash": string,"workspace_id": string
                  }
                  Update: {
                    "created_at"?: string,"email"?: string,"expires_at"?: string,"id"?: string,"invited_by"?: string | null,"responded_at"?: string | null,"role"?: string,"status"?: string,"token_hash"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "workspace_invitations_workspace_id_fkey"
      columns: ["workspace_id"]
isOneToOne: false
      referencedRelation: "workspaces"
      referencedColumns: ["id"]
    }
                  ]
                },"workspace_members": {
                  Row: {
                    "invited_by": string | null,"joined_at": string,"role": string,"user_id": string,"workspace_id": string
                  }
                  ComputedFields: never
                  Insert: {
                    "invited_by"?: string | null,"joined_at"?: string,"role": string,"user_id": string,"workspace_id": string
                  }
                  Update: {
                    "invited_by"?: string | null,"joined_at"?: string,"role"?: string,"user_id"?: string,"workspace_id"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "workspace_members_workspace_id_fkey"
      columns: ["workspace_id"]
isOneToOne: false
      referencedRelation: "workspaces"
      referencedColumns: ["id"]
    }
                  ]
                },"workspaces": {
                  Row: {
                    "created_at": string,"id": string,"name": string,"personal": boolean,"primary_owner_user_id": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "created_at"?: string,"id"?: string,"name": string,"personal"?: boolean,"primary_owner_user_id": string,"updated_at"?: string
                  }
                  Update: {
                    "created_at"?: string,"id"?: string,"name"?: string,"personal"?: boolean,"primary_owner_user_id"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    
                  ]
                }
          }
          Views: {
            [_ in never]: never
          }
          Functions: {
            "accept_workspace_invitation":
{ Args: { "p_token": string }; Returns: Json
                           },
"add_phone_number":
{ Args: { "p_assigned_to"?: string,"p_capabilities"?: (string)[],"p_connection_id": string,"p_e164": string,"p_friendly_name"?: string,"p_is_default"?: boolean }; Returns: Json
                           },
"add_sender_identity":
{ Args: { "p_connection_id": string,"p_email": string,"p_is_default"?: boolean,"p_name"?: string,"p_verified"?: boolean }; Returns: Json
                           },
"change_workspace_member_role":
{ Args: { "p_role": string,"p_user_id": string,"p_workspace_id": string }; Returns: Json
                           },
"create_agent":
{ Args: { "p_description"?: string,"p_name": string,"p_workspace_id"?: string }; Returns: Json
                           },
"create_connection":
{ Args: { "p_config"?: Json,"p_credentials": Json,"p_name": string,"p_provider": string,"p_scopes"?: (string)[],"p_workspace_id"?: string }; Returns: Json
                           },
"create_workspace":
{ Args: { "p_name": string }; Returns: Json
                           },
"decline_workspace_invitation":
{ Args: { "p_token": string }; Returns: Json
                           },
"delete_connection":
{ Args: { "p_connection_id": string }; Returns: Json
                           },
"delete_phone_number":
{ Args: { "p_phone_number_id": string }; Returns: Json
                           },
"delete_sender_identity":
{ Args: { "p_identity_id": string }; Returns: Json
                           },
"delete_workspace":
{ Args: { "p_workspace_id": string }; Returns: Json
                           },
"get_agent_tools":
{ Args: { "p_agent_id": string,"p_format"?: string }; Returns: Json
                           },
"get_smtp_tools":
{ Args: { "p_agent_id": string,"p_user_id": string }; Returns: Json
                           },
"grant_agent_permission":
{ Args: { "p_agent_id": string,"p_allowed_recipients"?: (string)[],"p_blocked_recipients"?: (string)[],"p_connection_id": string,"p_daily_send_limit"?: number,"p_expires_at"?: string,"p_max_recipients_per_message"?: number,"p_monthly_send_limit"?: number,"p_scopes": (string)[] }; Returns: Json
                           },
"invite_workspace_member":
{ Args: { "p_email": string,"p_expires_at"?: string,"p_role"?: string,"p_workspace_id": string }; Returns: Json
                           },
"issue_agent_key":
{ Args: { "p_agent_id": string,"p_expires_at"?: string,"p_name"?: string }; Returns: Json
                           },
"leave_workspace":
{ Args: { "p_workspace_id": string }; Returns: Json
                           },
"log_smtp_operation":
{ Args: { "p_agent_id": string,"p_error_message"?: string,"p_execution_time_ms"?: number,"p_operation_params"?: Json,"p_operation_result"?: Json,"p_operation_type": string,"p_recipients_count"?: number,"p_smtp_config_id": string,"p_status"?: string,"p_user_id": string }; Returns: string
                           },
"remove_member_permission":
{ Args: { "p_connection_id": string,"p_user_id": string }; Returns: Json
                           },
"remove_workspace_member":
{ Args: { "p_user_id": string,"p_workspace_id": string }; Returns: Json
                           },
"rename_workspace":
{ Args: { "p_name": string,"p_workspace_id": string }; Returns: Json
                           },
"revoke_agent_key":
{ Args: { "p_key_id": string }; Returns: Json
                           },
"revoke_agent_permission":
{ Args: { "p_permission_id": string }; Returns: Json
                           },
"revoke_workspace_invitation":
{ Args: { "p_invitation_id": string }; Returns: Json
                           },
"rotate_connection_credentials":
{ Args: { "p_connection_id": string,"p_credentials": Json }; Returns: Json
                           },
"set_default_mail_connection":
{ Args: { "p_connection_id": string }; Returns: Json
                           },
"set_member_default_number":
{ Args: { "p_phone_number_id": string,"p_user_id"?: string }; Returns: Json
                           },
"set_member_permission":
{ Args: { "p_allowed_recipients"?: (string)[],"p_blocked_recipients"?: (string)[],"p_can_configure"?: boolean,"p_can_send"?: boolean,"p_can_view"?: boolean,"p_connection_id": string,"p_daily_send_limit"?: number,"p_expires_at"?: string,"p_monthly_send_limit"?: number,"p_scopes"?: (string)[],"p_user_id": string }; Returns: Json
                           },
"set_route":
{ Args: { "p_channel": string,"p_connection_ids": (string)[],"p_user_id"?: string,"p_workspace_id": string }; Returns: Json
                           },
"transfer_workspace_ownership":
{ Args: { "p_new_owner_id": string,"p_workspace_id": string }; Returns: Json
                           },
"update_agent_permission":
{ Args: { "p_changes": Json,"p_permission_id": string }; Returns: Json
                           },
"update_connection":
{ Args: { "p_changes": Json,"p_connection_id": string }; Returns: Json
                           },
"update_phone_number":
{ Args: { "p_changes": Json,"p_phone_number_id": string }; Returns: Json
                           },
"update_sender_identity":
{ Args: { "p_changes": Json,"p_identity_id": string }; Returns: Json
                           },
"validate_agent_clicksend_permissions":
{ Args: { "p_agent_id": string,"p_required_scopes": (string)[],"p_user_id": string }; Returns: boolean
                           },
"validate_agent_smtp_permissions":
{ Args: { "p_agent_id": string,"p_smtp_config_id": string,"p_user_id": string }; Returns: boolean
                           },
"workspace_member_directory":
{ Args: { "p_workspace_id": string }; Returns: {
              "email": string,"invited_by": string,"joined_at": string,"role": string,"user_id": string
            }[]
                           }
          }
          Enums: {
            [_ in never]: never
          }
          CompositeTypes: {
            [_ in never]: never
          }
        }
}

type DatabaseWithoutInternals = Omit<Database, '__InternalSupabase'>

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
  ? (DefaultSchema["Tables"] & DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
      Row: infer R
    }
    ? R
    : never
  : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Insert: infer I
    }
    ? I
    : never
  : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Update: infer U
    }
    ? U
    : never
  : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never = never
> = DefaultSchemaEnumNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
  ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
  : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never = never
> = PublicCompositeTypeNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
  ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
  : never

export const Constants = {
  "public": {
          Enums: {
            
          }
        }
} as const
