package domain

// ClusterBackupStorageSet: platform admins chose the Proxmox storage the
// cluster's backups go to (a storage with content "backup", such as an NFS
// share every node mounts). Until set, backups go to DefaultBackupStorage.
type ClusterBackupStorageSet struct {
	Storage string `json:"storage"`
}

func (ClusterBackupStorageSet) EventType() string { return "cluster_backup_storage_set" }

// SetBackupStorage decides the cluster's backup storage.
func (c *Cluster) SetBackupStorage(storage string) ([]Event, error) {
	if !c.Exists() {
		return nil, ErrNotFound
	}
	if !ValidStorageID(storage) {
		return nil, &ValidationError{Fields: map[string]string{"backup_storage": "must be a Proxmox storage id"}}
	}
	if storage == c.BackupStorage {
		return nil, nil
	}
	return []Event{&ClusterBackupStorageSet{Storage: storage}}, nil
}

// BackupStorageOrDefault is where the cluster's backups go.
func (c *Cluster) BackupStorageOrDefault() string {
	if c.BackupStorage != "" {
		return c.BackupStorage
	}
	return DefaultBackupStorage
}
