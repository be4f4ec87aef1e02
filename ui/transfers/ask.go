package transfers

import (
	"strconv"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/transfer"
)

// shownFiles is how many of an offer's file names the question lists: a
// few tell what the offer is; a long list would push the buttons off the
// window.
const shownFiles = 5

// questionWidth keeps the question wide enough for a path to read well.
const questionWidth = 460

// question is one open Ask dialog.
type question struct {
	id       string
	answer   func(accept bool, dir string)
	answered bool
	d        *dialog.CustomDialog
	folder   *dialog.FileDialog // the folder dialog over it, once opened
	note     *widget.Label      // why a chosen folder was not taken
	accept   *widget.Button
	choose   *widget.Button
	decline  *widget.Button
}

// Ask asks the user about an incoming offer in a dialog over the window:
// Accept (into dir, shown), "Choose folder…" (a folder dialog; accepting
// into the chosen folder), or Decline. answer is called exactly once:
// accept with the folder, or decline (also if the dialog is dismissed any
// other way).
//
// Cancelling the folder dialog returns to the question, which stays open
// beneath it: the user chose to pick a folder, not to refuse the files.
// Several questions may be open at once, each answered on its own; a
// second Ask about an offer ID whose question is open replaces it (the
// first is answered as declined), as does an Update of that ID past
// Waiting. A question still open when the window closes is not answered:
// the app gives up on the offer as it shuts down.
func (s *Screen) Ask(o Offer, dir string, answer func(accept bool, dir string)) {
	s.ask(o, dir, answer)
}

// ask is Ask, handing the question to tests.
func (s *Screen) ask(o Offer, dir string, answer func(accept bool, dir string)) *question {
	if q := s.asked[o.ID]; q != nil {
		s.end(q, false, "")
	}
	q := &question{id: o.ID, answer: answer}
	from := clean(o.From)
	if from == "" {
		from = "Your friend"
	}
	title := "Files from " + from
	if len(o.Files) == 1 {
		title = "A file from " + from
	}

	lead := widget.NewLabel(from + " wants to send you " + count(len(o.Files)) + " (" + transfer.FormatSize(o.Total) + "):")
	lead.Wrapping = fyne.TextWrapWord
	names := container.NewVBox()
	for i, f := range o.Files {
		if i == shownFiles {
			more := widget.NewLabel("and " + strconv.Itoa(len(o.Files)-shownFiles) + " more")
			more.Importance = widget.LowImportance
			names.Add(more)
			break
		}
		l := widget.NewLabelWithStyle(clean(f), fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
		l.Truncation = fyne.TextTruncateEllipsis
		names.Add(l)
	}
	where := widget.NewLabel("Accept saves them in " + clean(dir) + ".")
	if len(o.Files) == 1 {
		where.SetText("Accept saves it in " + clean(dir) + ".")
	}
	where.Wrapping = fyne.TextWrapBreak // a path has few spaces to wrap at
	q.note = widget.NewLabel("")
	q.note.Wrapping = fyne.TextWrapWord
	q.note.Importance = widget.DangerImportance
	q.note.Hide()

	q.d = dialog.NewCustomWithoutButtons(title, container.NewVBox(lead, names, where, q.note), s.win)
	q.decline = widget.NewButtonWithIcon("Decline", theme.CancelIcon(), func() { s.end(q, false, "") })
	q.choose = widget.NewButtonWithIcon("Choose folder…", theme.FolderOpenIcon(), func() { s.chooseFolder(q, dir) })
	q.accept = widget.NewButtonWithIcon("Accept", theme.ConfirmIcon(), func() { s.end(q, true, dir) })
	q.accept.Importance = widget.HighImportance
	q.d.SetButtons([]fyne.CanvasObject{q.decline, q.choose, q.accept})
	// Any other way the dialog closes declines, so answer always comes.
	q.d.SetOnClosed(func() { s.end(q, false, "") })
	s.asked[o.ID] = q
	q.d.Show()
	q.d.Resize(fyne.NewSize(max(q.d.MinSize().Width, questionWidth), q.d.MinSize().Height))
	return q
}

// count words a number of files.
func count(n int) string {
	if n == 1 {
		return "a file"
	}
	return strconv.Itoa(n) + " files"
}

// chooseFolder opens a folder dialog over q, starting in dir; a folder
// chosen there accepts the offer into it, and cancelling returns to q.
func (s *Screen) chooseFolder(q *question, dir string) {
	q.folder = dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
		switch {
		case err != nil:
			s.say(q, "Could not open that folder: "+err.Error())
		case u == nil:
			// Cancelled: the question is still open beneath.
		case u.Scheme() != "file":
			s.say(q, "Choose a folder on this computer.")
		default:
			s.end(q, true, u.Path())
		}
	}, s.win)
	q.folder.SetTitleText("Save the files in…")
	q.folder.SetConfirmText("Save here")
	if start, err := storage.ListerForURI(storage.NewFileURI(dir)); err == nil {
		q.folder.SetLocation(start) // else the dialog starts where it last was
	}
	q.folder.Show()
}

// say shows why a folder choice did not answer q.
func (s *Screen) say(q *question, msg string) {
	q.note.SetText(msg)
	q.note.Show()
	q.d.Refresh()
}

// end answers q, once, and closes what is open of it.
func (s *Screen) end(q *question, accept bool, dir string) {
	if q.answered {
		return
	}
	q.answered = true
	if s.asked[q.id] == q {
		delete(s.asked, q.id)
	}
	if q.folder != nil {
		q.folder.Hide()
	}
	q.d.Hide() // its OnClosed comes back here and finds q answered
	q.answer(accept, dir)
}

// Asking lists the offers whose question is open, by ID.
func (s *Screen) Asking() []string {
	ids := make([]string, 0, len(s.asked))
	for id := range s.asked {
		ids = append(ids, id)
	}
	return ids
}

// Answer answers the open question about offer id as its Accept (into
// the folder it shows) or Decline button does, and reports whether such a
// question was open.
func (s *Screen) Answer(id string, accept bool) bool {
	q := s.asked[id]
	if q == nil {
		return false
	}
	if accept {
		q.accept.OnTapped()
	} else {
		q.decline.OnTapped()
	}
	return true
}
